#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* The peer's IP address as raw bytes (4 for IPv4, 16 for IPv6) and its family (AF_INET or
 * AF_INET6), or 0; MHD_get_connection_info is variadic, so Swift cannot call it. */
static inline int uc_mhd_client_ip(struct MHD_Connection *connection, unsigned char out[16]) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) return 0;
    const struct sockaddr *address = info->client_addr;
    if (address->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)address)->sin_addr, 4);
        return AF_INET;
    }
    if (address->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)address)->sin6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

/* The connection's socket, or -1. */
static inline int uc_mhd_connection_socket(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

#include <strings.h>

struct uc_framing_headers {
    int content_length;
    int transfer_encoding;
};

static inline enum MHD_Result uc_count_framing_header(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    (void)value;
    struct uc_framing_headers *seen = cls;
    if (key == NULL) return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) seen->content_length++;
    if (strcasecmp(key, "Transfer-Encoding") == 0) seen->transfer_encoding++;
    return MHD_YES;
}

/* 1 when the body's length is ambiguous: Content-Length twice, Transfer-Encoding twice, or
 * both. libmicrohttpd uses one of them and parses what is left as the next request, which a
 * proxy in front may have framed differently (request smuggling). */
static inline int uc_mhd_ambiguous_framing(struct MHD_Connection *connection) {
    struct uc_framing_headers seen = {0, 0};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, uc_count_framing_header, &seen);
    return seen.content_length > 1 || seen.transfer_encoding > 1
        || (seen.content_length > 0 && seen.transfer_encoding > 0);
}

#include <stdio.h>

/* Receives one formatted libmicrohttpd log line. */
typedef void (*uc_mhd_log_sink)(const char *line);

static inline void uc_mhd_format_log(void *cls, const char *format, va_list arguments) {
    char line[1024];
    vsnprintf(line, sizeof line, format, arguments);
    if (cls != NULL) ((uc_mhd_log_sink)cls)(line);
}

/* libmicrohttpd's logger (MHD_OPTION_EXTERNAL_LOGGER), which formats each line and hands it
 * to the sink passed as its closure: Swift cannot take a va_list callback itself. */
static inline MHD_LogCallback uc_mhd_log_callback(void) { return uc_mhd_format_log; }

/* The daemon's epoll descriptor, for a daemon run from an outside event loop; -1 if none. */
static inline int uc_mhd_epoll_fd(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info == NULL ? -1 : info->epoll_fd;
}
