#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

/* The peer's IP address as text; MHD_get_connection_info is variadic, so Swift cannot call it. */
static inline int uc_mhd_client_address(struct MHD_Connection *connection, char *out, socklen_t size) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) return -1;
    const struct sockaddr *address = info->client_addr;
    const void *raw = NULL;
    if (address->sa_family == AF_INET) raw = &((const struct sockaddr_in *)address)->sin_addr;
    if (address->sa_family == AF_INET6) raw = &((const struct sockaddr_in6 *)address)->sin6_addr;
    if (raw == NULL) return -1;
    return inet_ntop(address->sa_family, raw, out, size) != NULL ? 0 : -1;
}

/* Decodes %HH in paths and query arguments like libmicrohttpd's default, except %00, which stays
   the three characters "%00": a decoded NUL would end the C string there, and the request would
   silently become a shorter one (DELETE /api/chat/sessions/S%00/messages deleted session S). */
static inline size_t uc_mhd_unescape(void *cls, struct MHD_Connection *connection, char *s) {
    (void)cls;
    (void)connection;
    char *read = s, *write = s;
    while (*read != '\0') {
        char high = read[0] == '%' ? read[1] : 0, low = high ? read[2] : 0;
        int hi = (high >= '0' && high <= '9') ? high - '0'
            : (high >= 'a' && high <= 'f') ? high - 'a' + 10
            : (high >= 'A' && high <= 'F') ? high - 'A' + 10 : -1;
        int lo = (low >= '0' && low <= '9') ? low - '0'
            : (low >= 'a' && low <= 'f') ? low - 'a' + 10
            : (low >= 'A' && low <= 'F') ? low - 'A' + 10 : -1;
        if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
            *write++ = (char)(hi * 16 + lo);
            read += 3;
        } else {
            *write++ = *read++;
        }
    }
    *write = '\0';
    return (size_t)(write - s);
}
