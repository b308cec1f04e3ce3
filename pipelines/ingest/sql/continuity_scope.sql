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
WITH recent AS (
    -- the latest position before the first recomputed one, looked for in the 35 days before it first: a weekly
    -- run touches nearly every account, and reading all their earlier positions read the whole history
    SELECT
        m.bank_code,
        m.account_id,
        max({'booked_at': m.booked_at, 'movement_id': m.movement_id}) AS seed
    FROM staging.account_movements AS m
    INNER JOIN _continuity_from AS f
        ON m.bank_code IS NOT DISTINCT FROM f.bank_code AND m.account_id = f.account_id
    WHERE (m.booked_at < f.from_at OR (m.booked_at = f.from_at AND m.movement_id < f.from_id))
        AND m.booked_at >= f.from_at - INTERVAL 35 DAY
        AND m.booked_at >= (SELECT min(from_at) FROM _continuity_from) - INTERVAL 35 DAY  -- skips older row groups
    GROUP BY ALL
),

older AS (
    -- accounts without a movement in those 35 days (quiet, or new): their latest earlier position, if any
    SELECT
        m.bank_code,
        m.account_id,
        max({'booked_at': m.booked_at, 'movement_id': m.movement_id}) AS seed
    FROM staging.account_movements AS m
    INNER JOIN (
        SELECT * FROM _continuity_from AS f
        ANTI JOIN recent AS r ON r.bank_code IS NOT DISTINCT FROM f.bank_code AND r.account_id = f.account_id
    ) AS f
        ON m.bank_code IS NOT DISTINCT FROM f.bank_code AND m.account_id = f.account_id
    WHERE m.booked_at < f.from_at - INTERVAL 35 DAY
    GROUP BY ALL
),

seed AS (
    SELECT bank_code, account_id, seed.booked_at AS seed_at, seed.movement_id AS seed_id FROM recent
    UNION ALL
    SELECT bank_code, account_id, seed.booked_at AS seed_at, seed.movement_id AS seed_id FROM older
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
