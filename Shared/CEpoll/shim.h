/* Linux's epoll and eventfd, which Swift's Glibc module leaves out; used by Core's EventLoop. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
