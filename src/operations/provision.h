/*-------------------------------------------------------------------------
 *
 * provision.h
 *	  What the background worker needs of provision_marker.c beyond its
 *	  SQL function: batching the fsyncs of provisioning markers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_PROVISION_H
#define TENANT_AIRBYTE_PROVISION_H

extern void provision_defer_marker_sync(bool defer);

#endif							/* TENANT_AIRBYTE_PROVISION_H */
