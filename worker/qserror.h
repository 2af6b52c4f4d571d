/*
 * qserror.h: the worker's one vocabulary of outcomes. A function that can
 * fail returns QS_OK (0) or one of these negative codes, and writes why into
 * the caller's `char *errstr, size_t errstr_size` (errstr.h). The code says
 * what the caller can do about it; errstr says what happened, for the log or
 * a dead letter. The model is libuv's UV_ERRNO_MAP: one table, one enum, one
 * qs_strerror, so that two modules never give one number two meanings.
 *
 * A module documents which of these its functions return. Adding an outcome
 * is one line in QS_ERRNO_MAP.
 */
#ifndef QS_QSERROR_H
#define QS_QSERROR_H

/* X(name, value, what the caller does about it) */
#define QS_ERRNO_MAP(X)                                                                                     \
	X(OK, 0, "success")                                                                                 \
	X(ERROR, -1, "failed (the message says why); a connection-level failure is retried with a backoff") \
	X(RETRY, -2, "a dependency is unreachable or failing: nothing was consumed, try again later")       \
	X(REJECT, -3, "the input can never be used: dead-letter it, retrying cannot succeed")               \
	X(FATAL, -4, "a configuration, role or schema error no retry can fix: stop")                        \
	X(FENCED, -5, "another worker moved a partition's committed offset: reload the partition")

enum qs_err {
#define QS_ERR_ENUM(name, value, text) QS_##name = (value),
	QS_ERRNO_MAP(QS_ERR_ENUM)
#undef QS_ERR_ENUM
};

/* What the code means to its caller ("unknown outcome" for a value not in the map); a static string. */
const char *qs_strerror(int code);

/* "QS_RETRY", ...: the code's name, for logs and test failure messages; "QS_?" if unknown. */
const char *qs_err_name(int code);

#endif
