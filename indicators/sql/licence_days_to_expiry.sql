-- licence_days_to_expiry: days from week end to the filing's licence expiry (negative = expired).
SELECT k, licence_expiry - week_end AS licence_days_to_expiry
FROM ind_state
