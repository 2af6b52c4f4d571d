/* alerts.c: the table of alert kinds, alert ids and the wall clock (see alerts.h). */
#include "alerts.h"

#include <stdio.h>

#include "compiler.h"

static const struct {
	const char *name;
	enum qs_alert_scope scope;
} kinds[QS_ALERT_KIND_COUNT] = {[QS_ALERT_NONE] = {"NONE", QS_ALERT_SCOPE_ENCOUNTER},
#define QS_ALERT_KIND_ROW(name, scope) [QS_ALERT_##name] = {#name, QS_ALERT_SCOPE_##scope},
				QS_ALERT_KINDS(QS_ALERT_KIND_ROW)
#undef QS_ALERT_KIND_ROW
};

const char *alerts_kind_name(enum qs_alert_kind kind)
{
	return (size_t)kind < ARRAY_LEN(kinds) ? kinds[kind].name : "?";
}

enum qs_alert_scope alerts_kind_scope(enum qs_alert_kind kind)
{
	return kinds[kind].scope;
}

char *alerts_encounter_id(char buf[ALERTS_ID_MAX], enum qs_alert_kind kind, const char *plan_id,
			  const char *encounter_id)
{
	snprintf(buf, ALERTS_ID_MAX, "%s:%s:%s", alerts_kind_name(kind), plan_id, encounter_id);
	return buf;
}

struct alert_clock alerts_clock(bool wall)
{
	return (struct alert_clock){.wall = wall, .wall_ms = QS_NO_TS};
}

bool alerts_clock_wall_set(struct alert_clock *c, int64_t now_ms)
{
	if (c->wall)
		c->wall_ms = now_ms;
	return c->wall;
}

bool alerts_clock_wall_due(const struct alert_clock *c, int64_t clock_ms)
{
	return clock_ms == QS_NO_TS || dates_day_of_ms(clock_ms) < dates_day_of_ms(c->wall_ms);
}
