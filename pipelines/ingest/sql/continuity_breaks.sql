-- Per account, ordered by booked_at then movement_id: expected = previous balance_after + inflow - outflow.
-- The first movement of an account is its opening balance and cannot break. {movements}: all of
-- staging.account_movements, or the scope of an incremental run (continuity_scope.sql).
WITH movements AS (
    SELECT
        bank_code,
        account_id,
        institution_id,
        movement_id,
        booked_at,
        balance_after_fen,
        CASE
            WHEN kind IN ({inflow}) THEN amount_fen
            WHEN kind IN ({outflow}) THEN -amount_fen
        END AS signed_amount_fen
    FROM {movements}
),

sequenced AS (
    SELECT
        *,
        lag(balance_after_fen) OVER (
            PARTITION BY bank_code, account_id ORDER BY booked_at, movement_id
        ) AS previous_balance_fen
    FROM movements
),

expected AS (
    SELECT
        *,
        previous_balance_fen + signed_amount_fen AS expected_balance_fen
    FROM sequenced
    WHERE previous_balance_fen IS NOT NULL
)

SELECT
    bank_code,
    account_id,
    institution_id,
    movement_id,
    booked_at,
    strftime(timezone('Asia/Shanghai', booked_at), '%G-W%V') AS week,
    expected_balance_fen,
    balance_after_fen AS reported_balance_fen,
    balance_after_fen - expected_balance_fen AS delta_fen
FROM expected
WHERE balance_after_fen <> expected_balance_fen
ORDER BY bank_code, account_id, booked_at, movement_id
