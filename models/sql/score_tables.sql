-- The two score tables, one row per institution-week (and role); `_scored_at` = when the row was written.
create schema if not exists marts;

create table if not exists marts.model_scores_all (
    institution_id varchar,
    week varchar,
    model_name varchar,
    model_version varchar,
    role varchar,
    score double,
    contributions json,
    _scored_at timestamptz
);

create table if not exists marts.institution_week_scores (
    institution_id varchar,
    week varchar,
    model_name varchar,
    model_version varchar,
    score double,
    contributions json,
    _scored_at timestamptz
);
