-- lease_days_to_expiry: days from week end to the filing's site lease expiry (NULL for online institutions).
SELECT k, site_lease_expiry - week_end AS lease_days_to_expiry
FROM ind_state
