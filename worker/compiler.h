/*
 * compiler.h: the few compiler annotations and helpers the worker uses, in
 * one place so that every header spells them the same way (GCC and Clang;
 * the build requires one of them).
 */
#ifndef QS_COMPILER_H
#define QS_COMPILER_H

/* The caller must look at the result: an ignored error code is a lost failure. */
#define QS_MUSTCHECK __attribute__((warn_unused_result))

/* printf-style checking of the format at argument fmt_index against the arguments from first_index (0: a va_list). */
#define QS_PRINTF(fmt_index, first_index) __attribute__((format(printf, fmt_index, first_index)))

/* The function returns fresh memory that aliases nothing, of the size its argument at size_index gives. */
#define QS_MALLOC __attribute__((malloc))
#define QS_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))

/* Does not return (abort, exit). */
#define QS_NORETURN __attribute__((noreturn))

/* The number of elements of an array (not a pointer: the second term makes that a compile error). */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]) + QS_MUST_BE_ARRAY(a))
#define QS_MUST_BE_ARRAY(a)                                                                        \
	(0 * sizeof(struct {                                                                       \
		 _Static_assert(!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])), \
				"ARRAY_LEN of a pointer");                                         \
		 int unused;                                                                       \
	 }))

#endif
