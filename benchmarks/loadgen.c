/*
 * The benchmarks' HTTP/1.1 load generator: keep-alive requests over epoll, one thread.
 *
 * Why C: on the 2-core benchmark machine the client shares the cores with the server, Redis
 * and the broker. The asyncio client it replaces spent a good part of a core at a few
 * thousand requests per second, and its own pauses (the event loop behind, a collection)
 * were charged to the server as latency: an open-loop run cannot tell a late client from a
 * slow server. This loop costs a few microseconds of CPU per request. `benchmarks/http_load.py`
 * builds it with the system's C compiler on first use and drives it; docs/performance.md.
 *
 *   loadgen HOST PORT CONNECTIONS DURATION_S RATE [WARMUP_S] < requests
 *
 * stdin holds the requests, each a complete HTTP/1.1 request, separated by NUL bytes; they are
 * sent in turn. RATE 0: closed loop (each connection sends its next request when the last is
 * answered; latency from the send). RATE > 0: open loop as in wrk2 (request i is due at
 * start + i / RATE on connection i % CONNECTIONS, sent at its due time or as soon as that
 * connection's previous answer arrives; latency runs from the due time, so a stalled server is
 * charged for every request it delayed). Requests still unsent at the end count with the wait
 * they had ("unsent"); requests in flight may finish within one second after the end.
 * WARMUP_S (default 0): the load runs that long first, unmeasured, as wrk2's calibration
 * period does: a new connection's first answers (the server accepting it, building its
 * protocol objects) are not the server's steady state at the rate asked.
 *
 * Prints one JSON object: requests answered, errors (transport failures and non-2xx answers),
 * statuses, unsent, duration_s, and p50 / p99 / max latency in ms (nearest rank, over the
 * answered and the unsent).
 *
 * LOADGEN_DUMP=path appends, per measured answer, its due time (s after the run's start), its
 * latency (ms) and how late the client itself sent it (ms): where a tail came from.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_S 1.0
#define START_DELAY_S 0.05
#define MAX_STATUS 600

typedef struct {
    int fd;
    int index;
    int busy;        /* a request is in flight */
    int active;      /* open loop: has requests left */
    long next;       /* open loop: the next request number; closed loop: the next path */
    double due;      /* open loop: the due time of `next`; closed loop: when it was sent */
    double sent;     /* when the request in flight was sent (the dump tells the client's own lateness) */
    char *buf;
    size_t len, cap;
} conn_t;

static const char *host;
static int port;
static char **requests;
static size_t *request_lens;
static size_t n_requests;
static double *latencies;
static size_t n_latencies, cap_latencies;
static double measured_from;  /* answers due (open loop) or sent (closed loop) before it are the warm-up's */
static FILE *dump;  /* LOADGEN_DUMP=path (appended to): per answer its due time, latency, and how late it was sent */
static double dump_origin;
static long statuses[MAX_STATUS];
static long errors, unsent;
static int epfd;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record(double latency_s) {
    if (n_latencies == cap_latencies) {
        cap_latencies = cap_latencies ? cap_latencies * 2 : 65536;
        latencies = realloc(latencies, cap_latencies * sizeof *latencies);
        if (!latencies) { perror("realloc"); exit(2); }
    }
    latencies[n_latencies++] = latency_s;
}

static void record_at(double due, double sent, double latency_s) {
    record(latency_s);
    if (dump) fprintf(dump, "%.6f %.6f %.3f\n", due - dump_origin, latency_s * 1000.0, (sent - due) * 1000.0);
}

static void read_requests(void) {
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap);
    size_t got;
    while ((got = fread(all + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) { cap *= 2; all = realloc(all, cap); }
    }
    size_t slots = 16;
    requests = malloc(slots * sizeof *requests);
    request_lens = malloc(slots * sizeof *request_lens);
    for (size_t at = 0; at < len;) {
        char *end = memchr(all + at, '\0', len - at);
        size_t size = end ? (size_t)(end - (all + at)) : len - at;
        if (size) {
            if (n_requests == slots) {
                slots *= 2;
                requests = realloc(requests, slots * sizeof *requests);
                request_lens = realloc(request_lens, slots * sizeof *request_lens);
            }
            requests[n_requests] = all + at;
            request_lens[n_requests++] = size;
        }
        at += size + 1;
    }
    if (!n_requests) { fprintf(stderr, "loadgen: no request on stdin\n"); exit(2); }
}

static void close_conn(conn_t *c) {
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = 0;
    c->len = 0;
}

static int open_conn(conn_t *c) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        struct hostent *he = gethostbyname(host);
        if (!he) { fprintf(stderr, "loadgen: unknown host %s\n", host); exit(2); }
        memcpy(&addr.sin_addr, he->h_addr_list[0], sizeof addr.sin_addr);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { close(fd); return -1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    c->fd = fd;
    c->len = 0;
    return 0;
}

/* Sends request number `n` (cycling through the requests); 0 on success. */
static int send_request(conn_t *c, long n) {
    if (c->fd < 0 && open_conn(c) < 0) return -1;
    const char *req = requests[(size_t)n % n_requests];
    size_t left = request_lens[(size_t)n % n_requests];
    while (left) {
        ssize_t sent = send(c->fd, req, left, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            close_conn(c);
            return -1;
        }
        req += sent;
        left -= (size_t)sent;
    }
    c->busy = 1;
    c->len = 0;
    return 0;
}

static const char *find_header(const char *head, size_t head_len, const char *name) {
    size_t name_len = strlen(name);
    for (const char *p = head; p + name_len < head + head_len; p++) {
        if (p[0] == '\r' && p[1] == '\n' && strncasecmp(p + 2, name, name_len) == 0) return p + 2 + name_len;
    }
    return NULL;
}

/* The length of the whole response at the start of `buf` once complete, 0 while incomplete, -1 if malformed. */
static long response_length(const char *buf, size_t len, int *status, int *close_after) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head_len = (size_t)(end - buf) + 4;
    if (head_len < 12) return -1;
    *status = atoi(buf + 9);
    const char *conn = find_header(buf, head_len, "connection:");
    *close_after = conn && strncasecmp(conn + strspn(conn, " "), "close", 5) == 0;
    const char *cl = find_header(buf, head_len, "content-length:");
    if (cl) {
        long body = strtol(cl, NULL, 10);
        return len >= head_len + (size_t)body ? (long)(head_len + (size_t)body) : 0;
    }
    const char *te = find_header(buf, head_len, "transfer-encoding:");
    if (te && strncasecmp(te + strspn(te, " "), "chunked", 7) == 0) {
        size_t at = head_len;
        for (;;) {
            const char *line_end = memmem(buf + at, len - at, "\r\n", 2);
            if (!line_end) return 0;
            long size = strtol(buf + at, NULL, 16);
            at = (size_t)(line_end - buf) + 2;
            if (size == 0) return len >= at + 2 ? (long)(at + 2) : 0; /* no trailers */
            at += (size_t)size + 2;
            if (at > len) return 0;
        }
    }
    if ((*status >= 200 && *status != 204 && *status != 304)) return -1;
    return (long)head_len;
}

/* Reads what arrived; 1 when the response is complete (status filled), 0 while not, -1 on failure. */
static int read_response(conn_t *c, int *status) {
    for (;;) {
        if (c->cap - c->len < 16384) {
            c->cap = c->cap ? c->cap * 2 : 65536;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            return -1;
        }
        if (got == 0) return -1;
        c->len += (size_t)got;
    }
    int close_after = 0;
    long whole = response_length(c->buf, c->len, status, &close_after);
    if (whole < 0) return -1;
    if (whole == 0) return 0;
    c->busy = 0;
    c->len = 0;
    if (close_after) close_conn(c);
    return 1;
}

static void answered(int status, double due, double sent, double latency_s) {
    if (due < measured_from) return;
    record_at(due, sent, latency_s);
    if (status >= 0 && status < MAX_STATUS) statuses[status]++;
    if (status < 200 || status >= 300) errors++;
}

static void arm(int tfd, double at) {
    struct itimerspec when = {0};
    if (at > 0) {
        when.it_value.tv_sec = (time_t)at;
        when.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
        if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0) when.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &when, NULL);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(double q) {
    size_t n = n_latencies;
    double rank = q / 100.0 * (double)n;
    size_t at = (size_t)rank;
    if ((double)at < rank) at++;
    if (at > 0) at--;
    if (at >= n) at = n - 1;
    return latencies[at] * 1000.0;
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: loadgen HOST PORT CONNECTIONS DURATION_S RATE [WARMUP_S] < requests\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int n_conns = atoi(argv[3]);
    double duration = atof(argv[4]), rate = atof(argv[5]), warmup = argc == 7 ? atof(argv[6]) : 0.0;
    if (n_conns < 1 || duration <= 0 || rate < 0 || warmup < 0) { fprintf(stderr, "loadgen: bad arguments\n"); return 2; }
    read_requests();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);

    int open_loop = rate > 0;
    long total = open_loop ? (long)(rate * (warmup + duration)) : 0;
    if (open_loop && total < n_conns) n_conns = total > 0 ? (int)total : 1;
    conn_t *conns = calloc((size_t)n_conns, sizeof *conns);
    double start = now_s() + (open_loop ? START_DELAY_S : 0.0), end = start + warmup + duration;
    measured_from = start + warmup;
    const char *dump_path = getenv("LOADGEN_DUMP");
    if (dump_path && *dump_path) {
        dump = fopen(dump_path, "a");
        dump_origin = start;
        if (dump)
            fprintf(dump, "# origin %.6f (CLOCK_MONOTONIC s); per answer: due s after it, latency ms, sent after due ms\n",
                    start);
    }
    for (int i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        c->fd = -1;
        c->index = i;
        c->active = !open_loop || i < total;
        c->next = open_loop ? i : (long)i * (long)n_requests / n_conns;
        c->due = open_loop ? start + (double)i / rate : 0.0;
        if (open_conn(c) < 0) errors++;
    }
    struct epoll_event events[256];
    double began = now_s();
    for (;;) {
        double now = now_s();
        int busy = 0, active = 0;
        double wake = 0.0;
        for (int i = 0; i < n_conns; i++) {
            conn_t *c = &conns[i];
            if (!c->active) continue;
            if (!c->busy) {
                if (now >= end) {
                    if (open_loop) {  /* never sent within the run: each charged the wait it had */
                        for (long j = c->next; j < total; j += n_conns) {
                            double waited = now - (start + (double)j / rate);
                            record(waited > 0 ? waited : 0.0);
                            unsent++;
                        }
                    }
                    c->active = 0;
                    continue;
                }
                if (!open_loop || c->due <= now) {
                    if (!open_loop) c->due = now;
                    c->sent = now;
                    if (send_request(c, c->next) < 0) {
                        errors++;
                        if (open_loop) {  /* dropped, as a failed request is */
                            c->next += n_conns;
                            if (c->next >= total) { c->active = 0; continue; }
                            c->due = start + (double)c->next / rate;
                        } else {
                            usleep(10000);  /* a refused connection: don't spin on a dead server */
                        }
                        now = now_s();
                        i--;  /* look at this connection again */
                        continue;
                    }
                } else if (wake == 0.0 || c->due < wake) {
                    wake = c->due;
                }
            }
            if (c->busy) busy++;
            if (c->active) active++;
        }
        if (!active) break;
        if (now >= end + DRAIN_S) {  /* stuck past the drain: the server never answered these */
            errors += busy;
            break;
        }
        if (!busy) arm(tfd, wake);
        else arm(tfd, wake > 0 && wake < end + DRAIN_S ? wake : end + DRAIN_S);
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 2; }
        double at = now_s();
        for (int k = 0; k < n; k++) {
            conn_t *c = events[k].data.ptr;
            if (!c) {
                uint64_t expirations;
                ssize_t ignored = read(tfd, &expirations, sizeof expirations);
                (void)ignored;
                continue;
            }
            if (!c->busy) {  /* the server closed an idle connection */
                close_conn(c);
                continue;
            }
            int status = 0;
            int done = read_response(c, &status);
            if (done == 0) continue;
            if (done < 0) {
                errors++;
                close_conn(c);
            } else {
                answered(status, c->due, c->sent, at - c->due);
            }
            c->next += open_loop ? n_conns : 1;
            if (open_loop) {
                if (c->next >= total) c->active = 0;
                else c->due = start + (double)c->next / rate;
            }
        }
    }
    double duration_s = open_loop ? duration : now_s() - (began > measured_from ? began : measured_from);
    if (dump) fclose(dump);
    qsort(latencies, n_latencies, sizeof *latencies, cmp_double);
    printf("{\"requests\":%ld,\"errors\":%ld,\"unsent\":%ld,\"duration_s\":%.6f,", (long)n_latencies - unsent,
           errors, unsent, duration_s);
    if (n_latencies) {
        printf("\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,", percentile_ms(50), percentile_ms(99),
               percentile_ms(100));
    } else {
        printf("\"p50_ms\":null,\"p99_ms\":null,\"max_ms\":null,");
    }
    printf("\"statuses\":{");
    int first = 1;
    for (int s = 0; s < MAX_STATUS; s++) {
        if (statuses[s]) {
            printf("%s\"%d\":%ld", first ? "" : ",", s, statuses[s]);
            first = 0;
        }
    }
    printf("}}\n");
    return 0;
}
