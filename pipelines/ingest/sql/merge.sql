-- Merge the clean rows of one batch into staging.{feed} (current) and staging.{feed}_history (every version).
-- A version identical to one already in history is a no-op; the current version of a key is the one
-- from the latest delivery (date, then sequence).

-- versions: each clean row, whether its content is new for its key and whether the key existed
CREATE OR REPLACE TEMP TABLE _versions AS
WITH clean AS (
    SELECT * FROM _clean
),

batch_keys AS (
    SELECT DISTINCT {key_cols} FROM clean
),

-- the history and staging rows of the batch's keys only: a semi join probed by one scan, so the checks below
-- join the batch with a table of its own size instead of hashing the whole history. The scan reads the key
-- columns only and the known rows are fetched by rowid: at national, probing the bank movements' 54M-row
-- history with every content column cost ~25 s of a weekly run, where a few thousand of its rows are wanted
known_rows AS MATERIALIZED (
    SELECT h.rowid AS _history_row FROM staging.{feed}_history AS h SEMI JOIN batch_keys AS clean ON {key_match_h}
),

known_versions AS (
    SELECT h.* FROM staging.{feed}_history AS h SEMI JOIN known_rows AS k ON h.rowid = k._history_row
),

-- the batch's keys already in staging: those with a version in history, which holds every version of every key
-- in staging (this file is the only writer of both); probing staging as well cost another scan of its 54M keys
existing_keys AS (
    SELECT DISTINCT {key_cols} FROM known_versions
),

flagged AS (
    SELECT
        clean.*,
        NOT EXISTS (
            SELECT 1 FROM known_versions AS h WHERE {key_match_h} AND {content_match_h}
        ) AS _content_is_new,
        EXISTS (SELECT 1 FROM existing_keys AS s WHERE {key_match_s}) AS _key_existed,
        row_number() OVER (
            PARTITION BY {key_cols}, {content_cols} ORDER BY _delivery_date, _seq, _file, _row
        ) AS _copy_rank,
        row_number() OVER (PARTITION BY {key_cols} ORDER BY _delivery_date, _seq, _file, _row) AS _key_rank
    FROM clean
)

SELECT
    *,
    _content_is_new AND _copy_rank = 1 AS _is_new,
    _content_is_new AND _copy_rank = 1 AND NOT _key_existed AND _key_rank = 1 AS _is_insert
FROM flagged;

INSERT INTO staging.{feed}_history ({columns}, _superseded_at)
SELECT {columns}, NULL FROM _versions WHERE _is_new;

-- contested: the keys whose current version must be chosen among all of their versions, those given a new version
-- that is not their first (known before, or more than one in this batch). A key first seen with one version (most
-- rows of a first load and of a weekly delivery) is its own winner: its history row is already current and it
-- goes to staging as it is.
CREATE OR REPLACE TEMP TABLE _contested AS
SELECT DISTINCT {key_cols} FROM _versions WHERE _is_new AND NOT _is_insert;

-- winners: the latest-delivered version of every contested key
CREATE OR REPLACE TEMP TABLE _winners AS
WITH ranked AS (
    SELECT
        h.*,
        row_number() OVER (
            PARTITION BY {key_cols_h} ORDER BY h._delivery_date DESC, tw_seq(h._file) DESC, h._file DESC, h._row DESC
        ) AS _rank
    FROM staging.{feed}_history AS h
    SEMI JOIN (
        -- rowids first, as in known_rows: the scan of the history reads the keys only
        SELECT h.rowid AS _history_row FROM staging.{feed}_history AS h SEMI JOIN _contested AS t ON {key_match_ht}
    ) AS k ON h.rowid = k._history_row
)

SELECT * FROM ranked WHERE _rank = 1;

UPDATE staging.{feed}_history AS h
SET _superseded_at = CASE WHEN w._file = h._file AND w._row = h._row THEN NULL ELSE coalesce(h._superseded_at, now()) END
FROM _winners AS w
WHERE {key_match_hw};

DELETE FROM staging.{feed} AS s
WHERE EXISTS (SELECT 1 FROM _winners AS w WHERE {key_match_sw});

INSERT INTO staging.{feed} ({columns})
SELECT {columns} FROM _winners
UNION ALL
SELECT {columns} FROM _versions AS v
WHERE _is_insert AND NOT EXISTS (SELECT 1 FROM _contested AS t WHERE {key_match_vt});
