/*-------------------------------------------------------------------------
 *
 * http_multi.h
 *	  A sliding window of HTTP requests on one curl multi handle.  See
 *	  http_multi.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_HTTP_MULTI_H
#define TENANT_AIRBYTE_HTTP_MULTI_H

#include <curl/curl.h>

typedef struct HttpWindow HttpWindow;

extern HttpWindow *http_window_create(void);
extern void http_window_destroy(HttpWindow *window);
extern int	http_window_in_flight(HttpWindow *window);
extern void http_window_add(HttpWindow *window, CURL *easy, void *owner);
extern void http_window_remove(HttpWindow *window, CURL *easy);
extern bool http_window_take_any(HttpWindow *window, CURL **easy, void **owner);
extern bool http_window_wait(HttpWindow *window, long timeout_ms);
extern bool http_window_next_done(HttpWindow *window, CURL **easy,
								  CURLcode *result, void **owner);

#endif							/* TENANT_AIRBYTE_HTTP_MULTI_H */
