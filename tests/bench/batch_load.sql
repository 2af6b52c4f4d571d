-- batch_load.sql: what a batch user loads every night, the raw decoded events, with COPY into
-- tables without indexes (tests/bench/incremental.sh; the files come from incremental.py tsv and
-- are read by the server, as a nightly job on the database host would).
-- psql -v enc=FILE -v dlv=FILE -v mev=FILE -f batch_load.sql. Dates are Avro days since 1970-01-01,
-- instants epoch milliseconds, as decoded; seq is the event's position in the stream, which is
-- what "the latest version" of a record means (one partition per record, in produce order).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS batch CASCADE;
CREATE SCHEMA batch;
CREATE TABLE batch.encounter_event (
    seq bigint, encounter_id text, original_encounter_id text, plan_id text, member_id text,
    source text, frequency text, service_from int, service_to int, adjudicated_at bigint,
    submitted_at bigint, ed_visit boolean);
CREATE TABLE batch.delivery_event (
    seq bigint, delivery_id text, plan_id text, hospital_id text, member_id text, delivery_date int,
    parity int, gestational_age_weeks int, plurality int, presentation text, method text,
    live_birth boolean, status text);
-- A member event's body fields side by side (kind names the body; the others are null).
CREATE TABLE batch.member_event_raw (
    seq bigint, event_id text, plan_id text, member_id text, status text, kind text, month int,
    smi_sud boolean, event_date int, receives_smhs boolean, county_provider_outcome text,
    member_outcome text, care_plan_id text, plan_type text, completed_on int,
    care_goals_documented boolean, contact_date int);
COPY batch.encounter_event FROM :'enc';
COPY batch.delivery_event FROM :'dlv';
COPY batch.member_event_raw FROM :'mev';
