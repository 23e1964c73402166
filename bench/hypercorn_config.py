"""hypercorn settings for the benchmark's TLS/HTTP/2 upstream: connections are not ended after 1,000 requests (hypercorn's
default), which sends GOAWAY with streams it had accepted still unanswered, errors that are the double's, not the
transport's."""

keep_alive_max_requests = 1 << 40
