/*-------------------------------------------------------------------------
 *
 * http_internal.h
 *	  What http.c (the daemons, a request's life) and routes.c (what each
 *	  route answers) share; nothing outside the HTTP side uses it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WEBHOOKD_HTTP_INTERNAL_H
#define TENANT_AIRBYTE_WEBHOOKD_HTTP_INTERNAL_H

#include <microhttpd.h>

/* One HTTP request, from its request line to its answer. */
typedef struct Request
{
	Route		route;
	double		started;
	char		method[16];		/* sanitised copies, for the log */
	char		path[128];
	char		peer[64];
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	bool		too_large;		/* the body outgrew --max-body */
	size_t		discarded;		/* bytes dropped since */
	bool		answered;
	bool		counted;		/* in in_flight */
	bool		close;			/* close the connection after the answer */
	const char *refusal;		/* why the target is refused, or NULL */
	int			status;
	long long	delivery_id;
	GuardSlot  *slot;			/* the connection's entry in guard.c */
	struct MHD_Connection *conn;
} Request;

extern HttpOptions http_options;
extern bool http_stopping(void);

/* routes.c */
extern Route route_for(const char *raw);
extern enum MHD_Result start_request(struct MHD_Connection *conn, Request *req,
									 const char *method, const char *version);
extern void append_body(Request *req, const char *data, size_t size);
extern enum MHD_Result handle_webhook(struct MHD_Connection *conn, Request *req);
extern enum MHD_Result respond_text(struct MHD_Connection *conn, Request *req,
									int status, const char *message,
									int retry_after, const char *allow);
extern enum MHD_Result respond_located(struct MHD_Connection *conn, Request *req,
									   int status, const char *content_type,
									   const char *body, size_t body_len,
									   int retry_after, const char *allow,
									   const char *location);

/* oauth.c */
extern enum MHD_Result handle_oauth_callback(struct MHD_Connection *conn, Request *req);
extern enum MHD_Result handle_metrics_only(void *cls, struct MHD_Connection *conn,
										   const char *url, const char *method,
										   const char *version,
										   const char *upload_data,
										   size_t *upload_data_size,
										   void **con_cls);

#endif							/* TENANT_AIRBYTE_WEBHOOKD_HTTP_INTERNAL_H */
