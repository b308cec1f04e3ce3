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
WITH earlier AS (
    -- positions before the first recomputed one (narrow: the whole rows are read only for the scope)
    SELECT m.bank_code, m.account_id, m.booked_at, m.movement_id
    FROM staging.account_movements AS m
    INNER JOIN _continuity_from AS f
        ON m.bank_code IS NOT DISTINCT FROM f.bank_code AND m.account_id = f.account_id
    WHERE m.booked_at < f.from_at OR (m.booked_at = f.from_at AND m.movement_id < f.from_id)
),

seed_time AS (
    SELECT bank_code, account_id, max(booked_at) AS seed_at
    FROM earlier
    GROUP BY ALL
),

seed AS (
    SELECT e.bank_code, e.account_id, e.booked_at AS seed_at, max(e.movement_id) AS seed_id
    FROM earlier AS e
    INNER JOIN seed_time AS s
        ON e.bank_code IS NOT DISTINCT FROM s.bank_code AND e.account_id = s.account_id AND e.booked_at = s.seed_at
    GROUP BY ALL
)

SELECT m.*
FROM staging.account_movements AS m
INNER JOIN _continuity_from AS f
    ON m.bank_code IS NOT DISTINCT FROM f.bank_code AND m.account_id = f.account_id
WHERE (m.booked_at > f.from_at OR (m.booked_at = f.from_at AND m.movement_id >= f.from_id))
    AND m.booked_at >= (SELECT min(from_at) FROM _continuity_from)  -- lets the scan skip older row groups
UNION ALL BY NAME
SELECT m.*
FROM staging.account_movements AS m
INNER JOIN seed AS s
    ON m.bank_code IS NOT DISTINCT FROM s.bank_code AND m.account_id = s.account_id
    AND m.booked_at = s.seed_at AND m.movement_id = s.seed_id
WHERE m.booked_at >= (SELECT min(seed_at) FROM seed);

-- breaks at recomputed positions are replaced
DELETE FROM staging.bank_continuity_breaks AS b
USING _continuity_from AS f
WHERE b.bank_code IS NOT DISTINCT FROM f.bank_code AND b.account_id = f.account_id
    AND (b.booked_at > f.from_at OR (b.booked_at = f.from_at AND b.movement_id >= f.from_id));
