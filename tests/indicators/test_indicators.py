"""One test per registry indicator (named test_<indicator>), on the hand-made rows of conftest.py.

Expected values are worked out by hand from those rows; the comment beside each says how.
"""

from datetime import date, timedelta

import pytest

approx = pytest.approx


def registration_week_gap(week: int) -> int:
    """Whole weeks from the week of 2025-06-01 (a Sunday; its week starts Monday 2025-05-26) to 2026-W<week>
    (which starts Monday 2025-12-29 + 7 * (week - 1) days)."""
    monday = date(2025, 12, 29) + timedelta(weeks=week - 1)
    return (monday - date(2025, 5, 26)).days // 7


def test_prepaid_liability_fen(mart):
    assert mart("M", 9, "prepaid_liability_fen") == 0
    assert mart("M", 10, "prepaid_liability_fen") == 18_000 - 2_400          # m1 + m2 paid, c1 consumed
    assert mart("M", 11, "prepaid_liability_fen") == 18_000 - 2_400 - 3_600 - 6_000
    # rm1 refunds 8000 on m1 with 12000 - 6000 = 6000 left: the order goes to 0, not to -2000
    assert mart("M", 12, "prepaid_liability_fen") == 0
    assert mart("N", 11, "prepaid_liability_fen") == 0                      # no orders at all


def test_supervised_balance_fen(mart):
    assert mart("M", 9, "supervised_balance_fen") == 0                      # no movement yet
    assert mart("M", 10, "supervised_balance_fen") == 23_000                # movement 3
    assert mart("M", 11, "supervised_balance_fen") == 8_000 + 1_000         # movement 4 + second account
    assert mart("M", 13, "supervised_balance_fen") == 4_500 + 1_000
    assert mart("M", 14, "supervised_balance_fen") == 4_500 + 1_000         # no movement: last balance stays


def test_coverage_ratio(mart):
    assert mart("M", 10, "coverage_ratio") == approx(23_000 / 15_600)
    assert mart("M", 11, "coverage_ratio") == approx(9_000 / 6_000)
    assert mart("M", 12, "coverage_ratio") is None                          # zero liability
    assert mart("N", 12, "coverage_ratio") is None


def test_release_beyond_consumed_fen(mart):
    assert mart("M", 10, "release_beyond_consumed_fen") == -2_400           # nothing released, c1 consumed
    assert mart("M", 11, "release_beyond_consumed_fen") == 15_000 - 12_000  # released before c1..c3 caught up
    assert mart("N", 11, "release_beyond_consumed_fen") == 0


def test_reserve_shortfall_fen(mart):
    assert mart("M", 9, "reserve_shortfall_fen") == 20_000                  # required by the 'updated' filing
    assert mart("M", 10, "reserve_shortfall_fen") == 20_000 - 5_000
    assert mart("M", 13, "reserve_shortfall_fen") == 20_000 - (5_000 - 2_000)
    assert mart("S", 10, "reserve_shortfall_fen") == 0


def test_adjustment_out_fen_4w(mart):
    assert mart("M", 11, "adjustment_out_fen_4w") == 0
    assert mart("M", 12, "adjustment_out_fen_4w") == 1_500
    assert mart("M", 14, "adjustment_out_fen_4w") == 1_500                  # W11..W14 still holds W12


def test_bank_continuity_breaks_4w(mart):
    assert mart("M", 9, "bank_continuity_breaks_4w") == 0
    assert mart("M", 10, "bank_continuity_breaks_4w") == 2
    assert mart("M", 13, "bank_continuity_breaks_4w") == 3                  # W10..W13
    assert mart("M", 14, "bank_continuity_breaks_4w") == 1                  # W11..W14


def test_bank_feed_silence_weeks(mart):
    assert mart("M", 9, "bank_feed_silence_weeks") == registration_week_gap(9)   # never any movement
    assert mart("M", 13, "bank_feed_silence_weeks") == 0
    assert mart("M", 14, "bank_feed_silence_weeks") == 1
    assert mart("N", 13, "bank_feed_silence_weeks") == 2                    # registered in W11


def test_sales_spike_ratio(mart):
    # W02..W09 paid 1000,1000,2000,1000,3000,1000,1000,2001: median 1000; W10 paid 3000 + 2000
    assert mart("S", 10, "sales_spike_ratio") == approx(5.0)
    # W03..W10 sorted 1000,1000,1000,1000,2000,2001,3000,5000: median 1500; nothing sold in W11
    assert mart("S", 11, "sales_spike_ratio") == 0
    assert mart("N", 12, "sales_spike_ratio") is None                       # median 0


def test_discount_depth(mart):
    # W07..W10: paid 1000 + 1000 + 2001 + 5000, list 1000 + 1000 + 2001 + 8000
    assert mart("S", 10, "discount_depth") == approx(1 - 9_001 / 12_001)
    assert mart("M", 10, "discount_depth") == approx(1 - 18_000 / 26_000)  # cancelled m3 ignored
    assert mart("N", 12, "discount_depth") is None


def test_over_cap_orders_4w(mart):
    assert mart("S", 9, "over_cap_orders_4w") == 0                          # 60 hours, 3 months: within the cap
    assert mart("S", 10, "over_cap_orders_4w") == 2                         # 61 hours; 2026-03-01..06-02
    assert mart("S", 13, "over_cap_orders_4w") == 2
    assert mart("S", 14, "over_cap_orders_4w") == 0


def test_consumption_drop(mart):
    assert mart("M", 10, "consumption_drop") is None                        # nothing consumed in W06..W09
    assert mart("M", 11, "consumption_drop") == approx(1 - 9 / (2 / 4))     # growth is negative
    assert mart("M", 12, "consumption_drop") == approx(1.0)                 # 0 hours vs mean 11/4


def test_sell_deliver_ratio(mart):
    assert mart("M", 10, "sell_deliver_ratio") == approx(18_000 / 2_400)
    assert mart("M", 11, "sell_deliver_ratio") == approx(18_000 / 12_000)
    assert mart("B", 10, "sell_deliver_ratio") == 100                       # sold, nothing delivered: the cap
    assert mart("N", 12, "sell_deliver_ratio") is None


def test_liability_runway_weeks(mart):
    assert mart("M", 10, "liability_runway_weeks") == approx(15_600 / (2_400 / 4))
    assert mart("M", 11, "liability_runway_weeks") == approx(6_000 / (12_000 / 4))
    assert mart("M", 12, "liability_runway_weeks") is None                  # zero liability
    assert mart("B", 10, "liability_runway_weeks") == 520                   # nothing consumed: the cap


def test_orders_feed_silence_weeks(mart):
    assert mart("M", 11, "orders_feed_silence_weeks") == 0                  # consumptions only
    assert mart("M", 12, "orders_feed_silence_weeks") == 1                  # a refund is not an order row
    assert mart("M", 14, "orders_feed_silence_weeks") == 3
    assert mart("N", 11, "orders_feed_silence_weeks") == 0                  # since registration
    assert mart("N", 13, "orders_feed_silence_weeks") == 2


def test_refund_request_surge(mart):
    assert mart("R", 9, "refund_request_surge") == approx(1 / 1)            # W01..W08 mean 7/8, floor 1
    assert mart("R", 10, "refund_request_surge") == approx(4 / 1)           # r10a..r10d (Sunday 23:59 incl.)
    assert mart("R", 11, "refund_request_surge") == 0
    assert mart("R", 13, "refund_request_surge") == approx(2 / ((5 + 4) / 8))   # W05..W12: 1,1,1,1,1,4,0,0


def test_overdue_refunds(mart):
    assert mart("R", 10, "overdue_refunds") == 0      # r9 due Tue W10 but paid Fri W10
    assert mart("R", 11, "overdue_refunds") == 1      # r10a (Mon W10) due Tue W11; r10c rejected Wed W11
    assert mart("R", 12, "overdue_refunds") == 2      # + r10b (Fri W10) due Mon W12; r10d paid in W12
    assert mart("R", 14, "overdue_refunds") == 2


def test_median_refund_days(mart):
    assert mart("R", 10, "median_refund_days") == approx(2.0)               # r7, r8: 2 days; r9: 11 days
    r10d_days = 11 + (10 * 60 + 1) / 1440                                   # Sun 23:59 -> Fri+1 week 10:00
    assert mart("R", 12, "median_refund_days") == approx((11 + r10d_days) / 2)
    assert mart("R", 14, "median_refund_days") == approx(r10d_days)
    assert mart("N", 12, "median_refund_days") is None


def test_complaint_surge(mart):
    assert mart("K", 10, "complaint_surge") == approx(3 / 1)                # k1..k3; W02..W09 mean 1/8
    assert mart("K", 11, "complaint_surge") == approx(1 / 1)                # k4 (Monday 00:00)


def test_closure_keyword_complaints(mart):
    assert mart("K", 9, "closure_keyword_complaints") == 0
    assert mart("K", 10, "closure_keyword_complaints") == 2                 # k1 by category, k2 by 跑路
    assert mart("K", 13, "closure_keyword_complaints") == 2
    assert mart("K", 14, "closure_keyword_complaints") == 0


def test_unresolved_complaints(mart):
    assert mart("K", 5, "unresolved_complaints") == 1                       # k0
    assert mart("K", 10, "unresolved_complaints") == 3                      # k0, k1, k2; k3 rejected in W10
    assert mart("K", 11, "unresolved_complaints") == 3                      # k2 resolved, k4 received


def test_rating_drop(mart):
    assert mart("T", 4, "rating_drop") is None                              # no earlier period
    assert mart("T", 9, "rating_drop") == approx(4.5 - 3)
    assert mart("T", 10, "rating_drop") == approx(4.5 - 2.5)
    assert mart("T", 14, "rating_drop") is None                             # no recent rating


def test_licence_days_to_expiry(mart):
    assert mart("F", 10, "licence_days_to_expiry") == (date(2026, 4, 1) - date(2026, 3, 8)).days
    assert mart("F", 14, "licence_days_to_expiry") == -4                    # expired 2026-04-01, week end 04-05


def test_lease_days_to_expiry(mart):
    assert mart("F", 10, "lease_days_to_expiry") == 12                      # 03-20 vs 03-08
    assert mart("F", 11, "lease_days_to_expiry") == (date(2026, 9, 30) - date(2026, 3, 15)).days   # relocated


def test_staff_unverified_share(mart):
    assert mart("F", 10, "staff_unverified_share") == approx(0.3)
    assert mart("F", 11, "staff_unverified_share") == approx(0.3)           # empty field keeps the last value
    assert mart("M", 10, "staff_unverified_share") == 0


def test_governance_changes_90d(mart):
    assert mart("F", 1, "governance_changes_90d") == 0
    assert mart("F", 10, "governance_changes_90d") == 2                     # renamed 01-05, legal rep 02-20
    assert mart("F", 11, "governance_changes_90d") == 3                     # + relocated 03-09
    assert mart("F", 13, "governance_changes_90d") == 3                     # 03-29 - 89 days = 12-30
    assert mart("F", 14, "governance_changes_90d") == 2                     # 04-05 - 89 days = 01-06
