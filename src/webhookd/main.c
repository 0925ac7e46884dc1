/*-------------------------------------------------------------------------
 *
 * main.c
 *	  tenant_airbyte_webhookd: options, start-up, signals, shutdown.
 *
 * The main thread binds the socket, starts the HTTP threads and then only
 * waits for signals (blocked in every thread, taken with sigwait, so no
 * handler runs in an awkward place):
 *	  SIGTERM, SIGINT  stop accepting, let in-flight requests finish, exit 0
 *	  SIGHUP           reopen the log file
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ALLOW 256

static const char usage_text[] =
"tenant_airbyte_webhookd receives Frontegg webhooks over HTTP(S) and hands\n"
"each one, untouched, to tenant_airbyte.receive_webhook() in PostgreSQL.\n"
"\n"
"Usage:\n"
"  tenant_airbyte_webhookd [OPTION]...\n"
"\n"
"Options:\n"
"  --listen HOST:PORT          address to serve (default 127.0.0.1:8080;\n"
"                              IPv6 as [::1]:8080)\n"
"  --tls-cert FILE             serve HTTPS with this PEM certificate (chain);\n"
"                              needs --tls-key; plain HTTP is then refused\n"
"  --tls-key FILE              the certificate's PEM private key\n"
"  --metrics-listen HOST:PORT  serve GET /metrics on this address only, not\n"
"                              on --listen (default: on --listen)\n"
"  --conninfo STRING           libpq connection string or URI (default: the\n"
"                              PG* environment variables)\n"
"  --max-body BYTES            largest body accepted, larger gets 413\n"
"                              (default 1048576)\n"
"  --allow CIDR                accept requests only from this network;\n"
"                              repeatable; others get 403 (default: anyone)\n"
"  --pool-size N               database connections (default 8)\n"
"  --max-connections N         open HTTP connections (default 256); one in\n"
"                              eight is kept free by closing the oldest\n"
"                              connection still waiting for its request\n"
"  --max-connections-per-ip N  open HTTP connections per peer address\n"
"                              (default 32; 0: no limit); past it a new one\n"
"                              replaces the peer's oldest waiting one\n"
"  --request-timeout SECONDS   a connection must deliver a whole request\n"
"                              (headers and body) this soon after opening or\n"
"                              after its previous answer (default 10)\n"
"  --timeout SECONDS           close an HTTP connection idle this long\n"
"                              (default 10)\n"
"  --statement-timeout MS      statement_timeout for the shim's sessions\n"
"                              (default 10000; 0 keeps the server's)\n"
"  --log-file PATH             append the log here (default stderr);\n"
"                              SIGHUP reopens it\n"
"  --oauth-done-url URL        where GET /api/oauth/callback sends the user\n"
"                              (302) once it has completed an OAuth consent,\n"
"                              with ?status=ok&source_id=... or\n"
"                              ?status=error&reason=... appended (default: a\n"
"                              plain HTML page saying what happened)\n"
"  --help                      show this help and exit\n"
"  --version                   show the version and exit\n"
"\n"
"Frontegg sends webhooks from EU 99.81.198.187, 54.216.181.43,\n"
"52.209.54.22 and US 23.21.59.58, 54.152.159.125, 3.220.173.9.\n";

enum
{
	OPT_LISTEN = 256,
	OPT_CONNINFO,
	OPT_MAX_BODY,
	OPT_ALLOW,
	OPT_POOL_SIZE,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PER_IP,
	OPT_TIMEOUT,
	OPT_REQUEST_TIMEOUT,
	OPT_METRICS_LISTEN,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_STATEMENT_TIMEOUT,
	OPT_LOG_FILE,
	OPT_OAUTH_DONE_URL,
	OPT_HELP,
	OPT_VERSION
};

static void
fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "tenant_airbyte_webhookd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry \"tenant_airbyte_webhookd --help\" for more information.\n");
	exit(2);
}

/* parse_number: a whole number in [min, max], or exit with a message */
static unsigned long long
parse_number(const char *option, const char *text,
			 unsigned long long min, unsigned long long max)
{
	char	   *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-' ||
		value < min || value > max)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: invalid value \"%s\" for %s: expected a whole number from %llu to %llu\n",
				text, option, min, max);
		exit(2);
	}
	return value;
}

/*
 * listen_on
 *		Bind and listen on HOST:PORT ([v6]:PORT for IPv6).  Done here rather
 *		than by libmicrohttpd so that a taken port or a bad name fails the
 *		start with a clear message.
 */
static int
listen_on(const char *spec)
{
	char		host[256];
	const char *port;
	const char *colon;
	struct addrinfo hints;
	struct addrinfo *res;
	struct addrinfo *ai;
	int			fd = -1;
	int			rc;
	int			one = 1;
	int			saved_errno = 0;

	if (spec[0] == '[')
	{
		const char *close_bracket = strchr(spec, ']');

		if (close_bracket == NULL || close_bracket[1] != ':')
			fail("invalid --listen \"%s\": expected HOST:PORT or [IPv6]:PORT", spec);
		colon = close_bracket + 1;
		if ((size_t) (close_bracket - spec - 1) >= sizeof(host))
			fail("invalid --listen \"%s\": host too long", spec);
		memcpy(host, spec + 1, close_bracket - spec - 1);
		host[close_bracket - spec - 1] = '\0';
	}
	else
	{
		colon = strrchr(spec, ':');
		if (colon == NULL)
			fail("invalid --listen \"%s\": expected HOST:PORT or [IPv6]:PORT", spec);
		if ((size_t) (colon - spec) >= sizeof(host))
			fail("invalid --listen \"%s\": host too long", spec);
		memcpy(host, spec, colon - spec);
		host[colon - spec] = '\0';
	}
	port = colon + 1;
	parse_number("--listen port", port, 0, 65535);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: could not resolve \"%s\": %s\n",
				host, gai_strerror(rc));
		exit(1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
	{
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
		{
			saved_errno = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		saved_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: could not listen on %s: %s\n",
				spec, strerror(saved_errno));
		exit(1);
	}
	return fd;
}

/*
 * read_pem
 *		The whole of a PEM file, as the NUL-terminated text libmicrohttpd
 *		takes; exit with a message when it cannot be read.  The key is read
 *		before any thread exists and stays in memory: the service user
 *		need not be able to read it again later.
 */
static char *
read_pem(const char *path, const char *option)
{
	FILE	   *f = fopen(path, "r");
	char	   *text = NULL;
	size_t		len = 0;
	size_t		cap = 0;
	size_t		got;

	if (f == NULL)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: could not open %s file \"%s\": %s\n",
				option, path, strerror(errno));
		exit(1);
	}
	do
	{
		if (cap - len < 4097)
		{
			char	   *grown;

			if (cap > 1024 * 1024)
			{
				fprintf(stderr, "tenant_airbyte_webhookd: %s file \"%s\" is larger than 1 MiB: not a PEM certificate or key\n",
						option, path);
				exit(1);
			}
			cap = cap ? cap * 2 : 8192;
			grown = realloc(text, cap);
			if (grown == NULL)
			{
				fprintf(stderr, "tenant_airbyte_webhookd: out of memory\n");
				exit(1);
			}
			text = grown;
		}
		got = fread(text + len, 1, cap - len - 1, f);
		len += got;
	} while (got > 0);
	if (ferror(f))
	{
		fprintf(stderr, "tenant_airbyte_webhookd: could not read %s file \"%s\": %s\n",
				option, path, strerror(errno));
		exit(1);
	}
	fclose(f);
	text[len] = '\0';
	if (strstr(text, "-----BEGIN ") == NULL)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: %s file \"%s\" holds no PEM block (\"-----BEGIN ...\")\n",
				option, path);
		exit(1);
	}
	return text;
}

/*
 * wait_for_signals
 *		The main thread's whole job once serving: reopen the log on SIGHUP,
 *		return on SIGTERM or SIGINT.
 */
static void
wait_for_signals(const sigset_t *set)
{
	for (;;)
	{
		int			sig;

		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
		{
			if (log_reopen())
				log_message("log file reopened");
			continue;
		}
		log_message("received %s: no new connections, finishing %d request(s) in flight",
					sig == SIGTERM ? "SIGTERM" : "SIGINT", http_in_flight());
		return;
	}
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"conninfo", required_argument, NULL, OPT_CONNINFO},
		{"max-body", required_argument, NULL, OPT_MAX_BODY},
		{"allow", required_argument, NULL, OPT_ALLOW},
		{"pool-size", required_argument, NULL, OPT_POOL_SIZE},
		{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
		{"max-connections-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
		{"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"statement-timeout", required_argument, NULL, OPT_STATEMENT_TIMEOUT},
		{"log-file", required_argument, NULL, OPT_LOG_FILE},
		{"oauth-done-url", required_argument, NULL, OPT_OAUTH_DONE_URL},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	static AllowRule allow[MAX_ALLOW];
	const char *listen_spec = "127.0.0.1:8080";
	const char *metrics_spec = NULL;
	const char *tls_cert_path = NULL;
	const char *tls_key_path = NULL;
	const char *log_path = NULL;
	PoolOptions pool = {NULL, 8, 5000, 10000};
	HttpOptions http;
	sigset_t	signals;
	double		deadline;
	int			c;

	memset(&http, 0, sizeof(http));
	http.max_body = 1024 * 1024;
	http.allow = allow;
	http.max_connections = 256;
	http.max_connections_per_ip = 32;
	http.timeout_s = 10;
	http.request_timeout_s = 10;
	http.metrics_fd = -1;

	while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1)
	{
		switch (c)
		{
			case OPT_LISTEN:
				listen_spec = optarg;
				break;
			case OPT_CONNINFO:
				pool.conninfo = optarg;
				break;
			case OPT_MAX_BODY:
				http.max_body = parse_number("--max-body", optarg, 0, 1024ULL * 1024 * 1024);
				break;
			case OPT_ALLOW:
				if (http.nallow == MAX_ALLOW)
					fail("too many --allow rules (at most 256): %s", optarg);
				if (!allow_parse(optarg, &allow[http.nallow]))
					fail("invalid --allow \"%s\": expected an address or CIDR such as 10.0.0.0/8 or ::1/128", optarg);
				http.nallow++;
				break;
			case OPT_POOL_SIZE:
				pool.size = (int) parse_number("--pool-size", optarg, 1, 1000);
				break;
			case OPT_MAX_CONNECTIONS:
				http.max_connections = (unsigned int) parse_number("--max-connections", optarg, 1, 100000);
				break;
			case OPT_MAX_PER_IP:
				http.max_connections_per_ip = (unsigned int) parse_number("--max-connections-per-ip", optarg, 0, 100000);
				break;
			case OPT_TIMEOUT:
				http.timeout_s = (unsigned int) parse_number("--timeout", optarg, 1, 3600);
				break;
			case OPT_REQUEST_TIMEOUT:
				http.request_timeout_s = (unsigned int) parse_number("--request-timeout", optarg, 1, 3600);
				break;
			case OPT_METRICS_LISTEN:
				metrics_spec = optarg;
				break;
			case OPT_TLS_CERT:
				tls_cert_path = optarg;
				break;
			case OPT_TLS_KEY:
				tls_key_path = optarg;
				break;
			case OPT_STATEMENT_TIMEOUT:
				pool.statement_timeout_ms = (int) parse_number("--statement-timeout", optarg, 0, 3600000);
				break;
			case OPT_LOG_FILE:
				log_path = optarg;
				break;
			case OPT_OAUTH_DONE_URL:
				if (strncmp(optarg, "https://", 8) != 0 && strncmp(optarg, "http://", 7) != 0)
					fail("%s", "--oauth-done-url must be an absolute http or https URL");
				http.oauth_done_url = optarg;
				break;
			case OPT_HELP:
				fputs(usage_text, stdout);
				return 0;
			case OPT_VERSION:
				printf("tenant_airbyte_webhookd %s\n", TENANT_AIRBYTE_VERSION);
				return 0;
			default:
				fprintf(stderr, "Try \"tenant_airbyte_webhookd --help\" for more information.\n");
				return 2;
		}
	}
	if (optind < argc)
		fail("unexpected argument \"%s\"", argv[optind]);
	if ((tls_cert_path == NULL) != (tls_key_path == NULL))
		fail("%s", "--tls-cert and --tls-key go together: give both or neither");
	if (tls_cert_path != NULL)
	{
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		{
			fprintf(stderr, "tenant_airbyte_webhookd: this libmicrohttpd was built without TLS support, so --tls-cert cannot be used\n"
					"Install a libmicrohttpd built with GnuTLS (Debian's libmicrohttpd12 is), or terminate TLS in a proxy.\n");
			return 1;
		}
		http.tls_cert = read_pem(tls_cert_path, "--tls-cert");
		http.tls_key = read_pem(tls_key_path, "--tls-key");
	}

	if (!log_open(log_path))
		return 1;

	/*
	 * Block the signals we wait for before any thread exists, so every
	 * thread inherits the mask and only sigwait() sees them.  SIGPIPE is
	 * ignored: a peer that vanished is an error return, not a death.
	 */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	http.listen_fd = listen_on(listen_spec);
	if (metrics_spec != NULL)
		http.metrics_fd = listen_on(metrics_spec);
	if (!pool_init(&pool))
	{
		log_message("out of memory");
		return 1;
	}
	if (!http_start(&http))
	{
		if (http.tls_cert != NULL)
			log_message("could not start the HTTPS server on %s: the certificate \"%s\" or the key \"%s\" is not a valid PEM pair (see the line above); check that the key matches the certificate and is not encrypted",
						listen_spec, tls_cert_path, tls_key_path);
		else
			log_message("could not start the HTTP server on %s", listen_spec);
		return 1;
	}
	log_message("tenant_airbyte_webhookd %s listening on %s%s%s%s (pool %d, max body %zu bytes, %d allow rule(s), %u connections, %u per address)",
				TENANT_AIRBYTE_VERSION, http.tls_cert ? "https://" : "http://",
				listen_spec,
				metrics_spec ? ", /metrics on " : "", metrics_spec ? metrics_spec : "",
				pool.size, http.max_body, http.nallow,
				http.max_connections, http.max_connections_per_ip);
	pool_warm();

	wait_for_signals(&signals);

	/*
	 * Graceful stop: no new connections; requests already received get
	 * their answer (bounded by the timeouts that bound any request).
	 */
	http_stop_accepting();
	deadline = monotonic_seconds() + http.timeout_s + pool.statement_timeout_ms / 1000.0 + 5;
	while (http_in_flight() > 0 && monotonic_seconds() < deadline)
	{
		struct timespec pause = {0, 20 * 1000 * 1000};

		nanosleep(&pause, NULL);
	}
	http_stop();
	pool_shutdown();
	log_message("stopped");
	return 0;
}
