/*-------------------------------------------------------------------------
 *
 * tenant_data.h
 *	  Tenant data schemas: what other files need of tenant_data.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_DATA_H
#define TENANT_DATA_H

/* Settings (see tenant_data.c and doc/configuration.md) */
extern char *tenant_airbyte_tenant_roles;
extern bool tenant_airbyte_keep_data_on_purge;

extern void tenant_data_define_settings(void);

/* The data schema of a tenant: a valid identifier of at most 55 bytes. */
extern char *tenant_data_schema_name(const char *tenant_id);

#endif							/* TENANT_DATA_H */
