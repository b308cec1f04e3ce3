-- Step 1: each feed's rows with the time they are known (ind_known_at: the event time, or with
-- as_of_delivery the later of event time and delivery date) and the ISO week (Asia/Shanghai) of that time.

CREATE OR REPLACE TEMP TABLE ind_orders AS
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
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM orders;

CREATE OR REPLACE TEMP TABLE ind_consumptions AS
WITH consumptions AS (
    SELECT
        -- ids
        c.institution_id,
        c.order_id,
        c.consumption_id,
        -- quantities: the value consumed is paid_fen * hours / order.class_hours (exact, DOUBLE)
        c.class_hours AS hours,
        o.paid_fen * c.class_hours / o.class_hours AS value_fen,
        -- times
        ind_known_at(c.consumed_at, c._delivery_date) AS known_at
    FROM staging.consumptions AS c
    INNER JOIN ind_orders AS o ON o.order_id = c.order_id
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM consumptions;

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
)
SELECT
    *,
    date_trunc('week', requested_known_at)::DATE AS requested_week,
    date_trunc('week', paid_known_at)::DATE AS paid_week,
    date_trunc('week', closed_known_at)::DATE AS closed_week
FROM refunds;

CREATE OR REPLACE TEMP TABLE ind_movements AS
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
)
SELECT *, date_trunc('week', known_at)::DATE AS week_start FROM movements;

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
)
SELECT
    *,
    date_trunc('week', received_known_at)::DATE AS week_start,
    date_trunc('week', closed_known_at)::DATE AS closed_week
FROM complaints;

CREATE OR REPLACE TEMP TABLE ind_evaluations AS
SELECT
    institution_id,
    stars,
    date_trunc('week', ind_known_at(rated_at, _delivery_date))::DATE AS week_start
FROM staging.evaluations;

CREATE OR REPLACE TEMP TABLE ind_filings AS
SELECT
    *,
    ind_known_at(record_date::TIMESTAMPTZ, _delivery_date)::DATE AS known_date,
    event IN ('closed', 'revoked') AS is_terminal
FROM staging.institutions;
