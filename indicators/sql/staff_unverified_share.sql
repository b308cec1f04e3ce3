-- staff_unverified_share: share of the filing's staff without a criminal-record check (NULL without staff).
SELECT k, (staff_count - staff_verified) / nullif(staff_count, 0) AS staff_unverified_share
FROM ind_state
