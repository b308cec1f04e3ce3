-- Step 2: each feed's rows of the institutions of this chunk (ind_in_chunk) with the time they are known (ind_known_at: the event time, or with
-- as_of_delivery the later of event time and delivery date) and the ISO week (Asia/Shanghai) of that time.
-- Views `ind_all_<feed>` hold every row; the tables hold the rows of the weeks summed from rows (ind_rows_start()
-- on: the whole history on a full run, the recomputed weeks and their look-back on an incremental one, the
-- recomputed weeks alone on a refresh from stored sums).
-- `*_carry` tables fold the earlier rows into one row per order or account for the cumulative indicators
-- (aggregates only: no earlier row is kept, sorted or windowed). Refunds, complaints and filings are small
-- and kept whole (their state changes fall in later weeks).
-- The big feeds are split at ind_rows_since() (that week's Monday 00:00 Asia/Shanghai) on known_at
-- itself, not on its week: `date_trunc('week', known_at) >= ind_rows_start()` is the same test, but the time
-- zone arithmetic of date_trunc costs ~0.15 s per million rows and a plain comparison of the stored time
-- lets DuckDB skip whole row groups. The carry takes the week of its latest row after aggregating.

CREATE OR REPLACE TEMP VIEW ind_all_orders AS
WITH orders AS (
    SELECT
        -- ids
        institution_id,
        order_id,
        -- money and quantities
        paid_fen,
        list_price_fen,
        class_hours,
        -- flags
        class_hours > ind_order_cap_hours()
            OR course_end > course_start + to_months(ind_order_cap_months()) AS is_over_cap,
        -- times
        ind_known_at(paid_at, _delivery_date) AS known_at
    FROM staging.orders
    WHERE status = 'paid'  -- cancelled orders are excluded from every week
        AND ind_in_chunk(institution_id)
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM orders;

CREATE OR REPLACE TEMP TABLE ind_orders AS
SELECT * FROM ind_all_orders WHERE known_at >= ind_rows_since();

CREATE OR REPLACE TEMP VIEW ind_all_consumptions AS
WITH consumptions AS (
    SELECT
        -- ids
        institution_id,
        order_id,
        consumption_id,
        -- quantities
        class_hours AS hours,
        -- times
        ind_known_at(consumed_at, _delivery_date) AS known_at
    FROM staging.consumptions
    WHERE ind_in_chunk(institution_id)
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM consumptions;

CREATE OR REPLACE TEMP TABLE ind_consumptions AS
SELECT
    -- ids
    c.institution_id,
    c.order_id,
    c.consumption_id,
    -- quantities: the value consumed is paid_fen * hours / order.class_hours, in millionths of a fen: a DECIMAL
    -- sums exactly in any order, where DOUBLE sums of parallel threads flip a rounded fen between two runs
    c.hours,
    (o.paid_fen * c.hours / o.class_hours)::DECIMAL(18, 6) AS value_fen,
    -- times
    c.known_at,
    c.week_start
FROM ind_all_consumptions AS c
INNER JOIN ind_all_orders AS o ON o.order_id = c.order_id
WHERE c.known_at >= ind_rows_since();

CREATE OR REPLACE TEMP TABLE ind_refunds AS
WITH refunds AS (
    SELECT
        -- ids
        institution_id,
        order_id,
        refund_id,
        -- money
        requested_fen,
        -- times: a request is closed when paid (paid_at) or rejected (decided_at)
        requested_at,
        CASE status WHEN 'paid' THEN paid_at END AS paid_at,
        ind_known_at(requested_at, _delivery_date) AS requested_known_at,
        CASE status WHEN 'paid' THEN ind_known_at(paid_at, _delivery_date) END AS paid_known_at,
        CASE status
            WHEN 'paid' THEN ind_known_at(paid_at, _delivery_date)
            WHEN 'rejected' THEN ind_known_at(decided_at, _delivery_date)
        END AS closed_known_at
    FROM staging.refunds
    WHERE ind_in_chunk(institution_id)
)
SELECT
    *,
    date_trunc('week', requested_known_at)::DATE AS requested_week,
    date_trunc('week', paid_known_at)::DATE AS paid_week,
    date_trunc('week', closed_known_at)::DATE AS closed_week
FROM refunds;

-- With stored sums (a refresh) the carry row comes from them; the rows before are read only for the cap of
-- the orders settled from ind_rows_start() on (a class or a paid refund since) and the last balance of the
-- accounts with a movement since. Without, these are empty and the carry covers every order and account.
CREATE OR REPLACE TEMP TABLE ind_carried_orders AS
SELECT order_id FROM ind_consumptions WHERE ind_stored_sums()
UNION
SELECT order_id FROM ind_refunds WHERE ind_stored_sums() AND paid_week >= ind_rows_start();

CREATE OR REPLACE TEMP TABLE ind_consumption_carry AS
WITH per_size AS (
    -- per order and class size: the rows of one order differ only in their hours, so valuing each size once
    -- and multiplying by its count gives exactly the sum of the rows' values (each rounded as in ind_consumptions)
    SELECT
        institution_id, order_id, hours, count(*) AS consumptions,
        date_trunc('week', max(known_at))::DATE AS last_week
    FROM ind_all_consumptions
    WHERE known_at < ind_rows_since()
        AND (NOT ind_stored_sums() OR order_id IN (SELECT order_id FROM ind_carried_orders))
    GROUP BY ALL
)
SELECT
    -- ids
    c.institution_id,
    c.order_id,
    -- quantities
    sum(c.consumptions) AS consumptions,
    sum(c.hours * c.consumptions) AS hours,
    sum(c.consumptions * (o.paid_fen * c.hours / o.class_hours)::DECIMAL(18, 6)) AS value_fen,
    -- times
    max(c.last_week) AS last_week
FROM per_size AS c
INNER JOIN ind_all_orders AS o ON o.order_id = c.order_id
GROUP BY ALL;

CREATE OR REPLACE TEMP VIEW ind_all_movements AS
WITH movements AS (
    SELECT
        -- ids
        institution_id,
        bank_code,
        account_id,
        movement_id,
        -- money
        kind,
        amount_fen,
        balance_after_fen,
        -- times
        booked_at,
        ind_known_at(booked_at, _delivery_date) AS known_at
    FROM staging.account_movements
    WHERE ind_in_chunk(institution_id)
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM movements;

CREATE OR REPLACE TEMP TABLE ind_movements AS
SELECT * FROM ind_all_movements WHERE known_at >= ind_rows_since();

CREATE OR REPLACE TEMP TABLE ind_movement_carry AS
SELECT
    -- ids
    institution_id,
    bank_code,
    account_id,
    -- money: the account's balance after its last movement of its last week, and the cumulative sums (the
    -- known week orders first only as of delivery: otherwise it follows booked_at, and the time-zone arithmetic
    -- of every earlier movement's week was most of this aggregate's time)
    arg_max(balance_after_fen, (CASE WHEN ind_as_of_delivery() THEN week_start END, booked_at, movement_id))
        AS balance_after_fen,
    coalesce(sum(amount_fen) FILTER (WHERE kind = 'release'), 0) AS released_fen,
    coalesce(sum(amount_fen) FILTER (WHERE kind = 'reserve_in'), 0)
        - coalesce(sum(amount_fen) FILTER (WHERE kind = 'reserve_out'), 0) AS reserve_net_fen,
    -- counts and times
    count(*) AS movements,
    date_trunc('week', max(known_at))::DATE AS last_week
FROM ind_all_movements
WHERE known_at < ind_rows_since() AND NOT ind_stored_sums()
GROUP BY ALL
UNION ALL
-- from stored sums only the balance is carried (the sums come with the stored weeks), and only for the accounts
-- with a movement since: the last stored week's balance (each stored week's is that of its last movement, by
-- booked_at within the week, so the latest week's is the latest movement's in either order above), read from
-- the weekly balances instead of every earlier movement (by account_id alone: an account of the same id at
-- another bank carried too is harmless)
SELECT institution_id, bank_code, account_id, arg_max(balance_after_fen, week_start), 0, 0, 0, max(week_start)
FROM marts.account_week_balances
WHERE ind_stored_sums() AND week_start < ind_rows_start() AND ind_in_chunk(institution_id)
    AND account_id IN (SELECT account_id FROM ind_movements)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ind_complaints AS
WITH complaints AS (
    SELECT
        -- ids
        institution_id,
        complaint_id,
        -- flags
        category = 'closure_or_absconding'
            OR regexp_matches(coalesce(text, ''), '跑路|关门|停课|联系不上|退费难|人去楼空|卷款|倒闭')
            AS is_closure_keyword,
        -- times: resolved or rejected complaints close at resolved_at, else responded_at, else received_at
        ind_known_at(received_at, _delivery_date) AS received_known_at,
        CASE WHEN status IN ('resolved', 'rejected')
            THEN ind_known_at(coalesce(resolved_at, responded_at, received_at), _delivery_date)
        END AS closed_known_at
    FROM staging.complaints
    WHERE ind_in_chunk(institution_id)
)
SELECT
    *,
    date_trunc('week', received_known_at)::DATE AS week_start,
    date_trunc('week', closed_known_at)::DATE AS closed_week
FROM complaints;

CREATE OR REPLACE TEMP TABLE ind_evaluations AS  -- trailing windows only: the grid's weeks suffice
WITH evaluations AS (
    SELECT
        institution_id,
        stars,
        date_trunc('week', ind_known_at(rated_at, _delivery_date))::DATE AS week_start
    FROM staging.evaluations
    WHERE ind_in_chunk(institution_id)
)
SELECT * FROM evaluations WHERE week_start >= ind_rows_start();

CREATE OR REPLACE TEMP TABLE ind_filings AS
SELECT
    *,
    ind_known_at(record_date::TIMESTAMPTZ, _delivery_date)::DATE AS known_date,
    event IN ('closed', 'revoked') AS is_terminal
FROM staging.institutions
WHERE ind_in_chunk(institution_id);
