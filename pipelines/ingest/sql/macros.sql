-- Helpers the contract predicates and the merge use (temporary: created on every ingest connection).
CREATE OR REPLACE TEMP MACRO tw_seq(file_name) AS
    coalesce(try_cast(regexp_extract(file_name, '_[0-9]{8}_([0-9]+)\.', 1) AS INTEGER), 0);

CREATE OR REPLACE TEMP MACRO tw_delivery_date(file_name) AS
    CAST(strptime(regexp_extract(file_name, '_([0-9]{8})(_[0-9]+)?\.', 1), '%Y%m%d') AS DATE);

-- GB 32100-2015: check = 31 - (sum of value * weight over the first 17) mod 31, 31 -> 0.
CREATE OR REPLACE TEMP MACRO tw_uscc_ok(code) AS
    regexp_full_match(code, '[0-9A-HJ-NP-RTUWXY]{18}')
    AND substr(
        '0123456789ABCDEFGHJKLMNPQRTUWXY',
        CAST((31 - list_sum(list_transform(
            range(1, 18),
            lambda i: (strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(code, i, 1)) - 1)
                * [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28][i]
        )) % 31) % 31 + 1 AS BIGINT),
        1
    ) = substr(code, 18, 1);
