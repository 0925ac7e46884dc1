/*-------------------------------------------------------------------------
 *
 * kindlist.h
 *	  The operation kinds, one line each (like PostgreSQL's rmgrlist.h).
 *
 * OPERATION_KIND(symbol): symbol is the const OperationKind a kind's file
 * in src/operations/ defines (see src/engine/operation.h).  Adding a kind
 * is its file plus one line here; the engine walks this list and never
 * names a kind.  No include guard: this file is included several times
 * with different definitions of OPERATION_KIND.
 *
 *-------------------------------------------------------------------------
 */

/* symbol, defined in */
OPERATION_KIND(provision_kind)			/* kind_provision.c: provision */
OPERATION_KIND(rename_kind)				/* kind_rename.c: rename */
OPERATION_KIND(deprovision_kind)		/* kind_deprovision.c: deprovision */
OPERATION_KIND(purge_kind)				/* kind_purge.c: purge */
