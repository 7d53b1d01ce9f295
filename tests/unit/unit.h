/*
 * A very small unit-test harness.  Each tests/unit/test_*.c is one program
 * whose main() is UNIT_MAIN(cases); it prints one TAP line per case
 * ("ok N - name" / "not ok N - name") and tests/run adds them up.
 * A failed check prints where and why but lets the case go on, so one run
 * shows every broken row of a table.
 */
#ifndef UNIT_H
#define UNIT_H

#include <sys/stat.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char	*name;
	void		(*fn)(void);
};

static int unit_failed_checks;

static inline int
unit_check(int ok, const char *what, const char *file, int line)
{
	if (!ok) {
		printf("# %s:%d: check failed: %s\n", file, line, what);
		unit_failed_checks++;
	}
	return ok;
}

/*
 * A fresh scratch directory of mode 0700 in dir (at least 64 bytes),
 * /tmp/imapmerge-NAME-XXXXXX; the previous call's is removed first.
 */
static inline void
unit_scratch_dir(char *dir, size_t len, const char *name)
{
	char	 cmd[128];

	if (dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("# cannot clean %s\n", dir);
	}
	snprintf(dir, len, "/tmp/imapmerge-%s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		printf("# mkdtemp failed\n");
	chmod(dir, 0700);
}

#define CHECK(cond)	unit_check(!!(cond), #cond, __FILE__, __LINE__)

#define CHECK_INT(a, b) do {						\
	intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);		\
	if (!unit_check(a_ == b_, #a " == " #b, __FILE__, __LINE__))	\
		printf("#   got %jd, want %jd\n", a_, b_);		\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	int same_ = a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0;	\
	if (!unit_check(same_, #a " eq " #b, __FILE__, __LINE__))	\
		printf("#   got \"%s\", want \"%s\"\n",		\
		    a_ ? a_ : "(null)", b_ ? b_ : "(null)");		\
} while (0)

#define CHECK_MEM(a, alen, b, blen) do {				\
	size_t al_ = (alen), bl_ = (blen);				\
	unit_check(al_ == bl_ && memcmp((a), (b), al_) == 0,		\
	    #a " eq " #b, __FILE__, __LINE__);				\
} while (0)

/* Deterministic pseudo-random numbers for chunking tests. */
static inline uint32_t
unit_rand(uint32_t *seed)
{
	*seed ^= *seed << 13;
	*seed ^= *seed >> 17;
	*seed ^= *seed << 5;
	return *seed;
}

static inline int
unit_main(const struct unit_case *cases, size_t n)
{
	size_t	 i, bad = 0;

	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		int before = unit_failed_checks;

		cases[i].fn();
		if (unit_failed_checks != before)
			bad++;
		printf("%s %zu - %s\n", unit_failed_checks != before ?
		    "not ok" : "ok", i + 1, cases[i].name);
		fflush(stdout);
	}
	return bad ? 1 : 0;
}

#define UNIT_CASE(fn)	{ #fn, fn }
#define UNIT_MAIN(cases) \
	int main(void) { return unit_main(cases, sizeof(cases) / sizeof(cases[0])); }

#endif
