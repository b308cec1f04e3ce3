-- The movements whose break status can have changed since $since: per account touched by a movement loaded
-- or superseded since, every movement from the earliest touched position on (booked_at, movement_id), plus
-- the one just before it (it seeds the expected balance and is not itself recomputed).
CREATE OR REPLACE TEMP TABLE _continuity_from AS
WITH changed AS (
    SELECT bank_code, account_id, booked_at, movement_id
    FROM staging.account_movements
    WHERE _loaded_at > $since
    UNION ALL
    SELECT bank_code, account_id, booked_at, movement_id
    FROM staging.account_movements_history
    WHERE _superseded_at > $since
),

first_time AS (
    SELECT bank_code, account_id, min(booked_at) AS from_at
    FROM changed
    GROUP BY ALL
)

SELECT
    f.bank_code,
    f.account_id,
    f.from_at,
    min(c.movement_id) AS from_id
FROM first_time AS f
INNER JOIN changed AS c
    ON c.bank_code IS NOT DISTINCT FROM f.bank_code AND c.account_id = f.account_id AND c.booked_at = f.from_at
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _continuity_scope AS
WITH positioned AS (
    SELECT
        m.*,
        f.from_at,
        f.from_id,
        m.booked_at > f.from_at OR (m.booked_at = f.from_at AND m.movement_id >= f.from_id) AS is_recomputed
    FROM staging.account_movements AS m
    INNER JOIN _continuity_from AS f
        ON m.bank_code IS NOT DISTINCT FROM f.bank_code AND m.account_id = f.account_id
),

seed_time AS (
    SELECT bank_code, account_id, max(booked_at) AS seed_at
    FROM positioned
    WHERE NOT is_recomputed
    GROUP BY ALL
),

seed AS (
    SELECT p.bank_code, p.account_id, p.booked_at AS seed_at, max(p.movement_id) AS seed_id
    FROM positioned AS p
    INNER JOIN seed_time AS s
        ON p.bank_code IS NOT DISTINCT FROM s.bank_code AND p.account_id = s.account_id AND p.booked_at = s.seed_at
    WHERE NOT p.is_recomputed
    GROUP BY ALL
)

SELECT p.* EXCLUDE (from_at, from_id, is_recomputed)
FROM positioned AS p
WHERE p.is_recomputed
UNION ALL BY NAME
SELECT p.* EXCLUDE (from_at, from_id, is_recomputed)
FROM positioned AS p
INNER JOIN seed AS s
    ON p.bank_code IS NOT DISTINCT FROM s.bank_code AND p.account_id = s.account_id
    AND p.booked_at = s.seed_at AND p.movement_id = s.seed_id;

-- breaks at recomputed positions are replaced
DELETE FROM staging.bank_continuity_breaks AS b
USING _continuity_from AS f
WHERE b.bank_code IS NOT DISTINCT FROM f.bank_code AND b.account_id = f.account_id
    AND (b.booked_at > f.from_at OR (b.booked_at = f.from_at AND b.movement_id >= f.from_id));
