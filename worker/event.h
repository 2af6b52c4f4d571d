/*
 * event.h: the decoded form of every input message, shared by decode (which
 * fills it), measures (which read it) and state (which keys entities by it).
 *
 * An event is a fixed-size value with no pointers: decode writes it in place,
 * so the hot path allocates nothing. Identifiers longer than QS_ID_MAX - 1
 * bytes are rejected by decode (dead letter), never truncated.
 *
 * Dates are days since 1970-01-01 (Avro `date`); instants are milliseconds
 * since the epoch, UTC (Avro `timestamp-millis`).
 */
#ifndef QS_EVENT_H
#define QS_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#define QS_ID_MAX 64 /* identifier bytes including the terminating NUL */

/* An absent nullable date or int, and an absent nullable instant. */
#define QS_NO_DATE INT32_MIN
#define QS_NO_INT INT32_MIN
#define QS_NO_TS INT64_MIN

enum qs_topic { QS_TOPIC_ENCOUNTERS, QS_TOPIC_DELIVERIES, QS_TOPIC_MEMBER_EVENTS, QS_TOPIC_COUNT };

/* Enum values are the Avro symbol indexes of the schemas/ .avsc files, in order (decode_new checks that). */
enum qs_source { QS_SOURCE_MEDICARE, QS_SOURCE_MEDICAID };
enum qs_frequency { QS_FREQ_ORIGINAL, QS_FREQ_REPLACEMENT, QS_FREQ_VOID };
enum qs_status { QS_STATUS_ACTIVE, QS_STATUS_VOID };
enum qs_presentation {
	QS_PRES_NONE = -1, /* null in the message */
	QS_PRES_VERTEX,
	QS_PRES_BREECH,
	QS_PRES_TRANSVERSE,
	QS_PRES_OTHER
};
enum qs_method { QS_METHOD_VAGINAL, QS_METHOD_CESAREAN };
enum qs_outcome { QS_OUTCOME_SUCCESS, QS_OUTCOME_UNABLE_TO_REACH, QS_OUTCOME_NOT_ATTEMPTED };
enum qs_care_plan_type { QS_CARE_PLAN_INITIAL, QS_CARE_PLAN_REVISED };

struct qs_encounter {
	char encounter_id[QS_ID_MAX];
	char original_encounter_id[QS_ID_MAX]; /* "" when null */
	char plan_id[QS_ID_MAX];
	char member_id[QS_ID_MAX];
	enum qs_source source;
	enum qs_frequency frequency;
	int32_t service_from;
	int32_t service_to;
	int64_t adjudicated_at; /* QS_NO_TS when null */
	int64_t submitted_at;   /* QS_NO_TS when null: owed, not yet submitted */
	bool ed_visit;
};

struct qs_delivery {
	char delivery_id[QS_ID_MAX];
	char plan_id[QS_ID_MAX];
	char hospital_id[QS_ID_MAX];
	char member_id[QS_ID_MAX];
	int32_t delivery_date;
	int32_t parity;                /* QS_NO_INT when null */
	int32_t gestational_age_weeks; /* QS_NO_INT when null */
	int32_t plurality;             /* QS_NO_INT when null */
	enum qs_presentation presentation;
	enum qs_method method;
	bool live_birth;
	enum qs_status status;
};

/* The five bodies of a member event (schemas/member_event.avsc's union). */
enum qs_member_body {
	QS_BODY_ENROLLMENT,
	QS_BODY_BH_COORDINATION,
	QS_BODY_CARE_PLAN,
	QS_BODY_COORDINATOR_ASSIGNED,
	QS_BODY_CARE_TEAM_CONTACT
};

struct qs_member_event {
	char event_id[QS_ID_MAX];
	char plan_id[QS_ID_MAX];
	char member_id[QS_ID_MAX];
	enum qs_status status;
	enum qs_member_body body;
	union {
		struct {
			int32_t month; /* first day of the enrolled month */
			bool smi_sud;
		} enrollment;
		struct {
			int32_t event_date;
			bool receives_smhs;
			enum qs_outcome county_provider_outcome;
			enum qs_outcome member_outcome;
		} bh_coordination;
		struct {
			char care_plan_id[QS_ID_MAX];
			enum qs_care_plan_type plan_type;
			int32_t completed_on;
			bool care_goals_documented;
		} care_plan;
		struct {
			int32_t month; /* first day of the month with a coordinator */
		} coordinator_assigned;
		struct {
			int32_t contact_date;
		} care_team_contact;
	} u;
};

struct qs_event {
	enum qs_topic topic;
	union {
		struct qs_encounter encounter;
		struct qs_delivery delivery;
		struct qs_member_event member;
	} u;
};

/*
 * The id of the record an event is a version of: its corrections and voids
 * carry the same id, and its latest version is the record's state.
 */
static inline const char *qs_event_record_id(const struct qs_event *ev)
{
	switch (ev->topic) {
	case QS_TOPIC_ENCOUNTERS:
		return ev->u.encounter.encounter_id;
	case QS_TOPIC_DELIVERIES:
		return ev->u.delivery.delivery_id;
	default:
		return ev->u.member.event_id;
	}
}

#endif
