/*-------------------------------------------------------------------------
 *
 * backfill.h
 *	  The worker's side of provision_tenants() and pause_worker().  See
 *	  backfill.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_BACKFILL_H
#define TENANT_AIRBYTE_BACKFILL_H

extern void backfill_read_control(void);
extern int	backfill_feed(int limit);

#endif							/* TENANT_AIRBYTE_BACKFILL_H */
