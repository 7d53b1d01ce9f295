"""The benchmarks' arithmetic (tests/bench/bench_proxy.py and
bench_mailbox.py): ratios are taken round by round, so a machine that
changes speed between rounds does not change them."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "bench"))
import bench_mailbox  # noqa: E402
import bench_proxy  # noqa: E402


def rounds(direct, factor, added_us):
    """Figures of len(direct) rounds in which imapmerge does factor of
    direct's throughput and adds added_us to a NOOP."""
    return {
        "bulk_mbps_direct": direct,
        "bulk_mbps_imapmerge": [d * factor for d in direct],
        "bulk_mbps_nginx": direct,
        "bulk_mbps_imapmerge_plain": direct,
        "noop_p50_us_direct": [1e5 / d for d in direct],
        "noop_p50_us_imapmerge": [1e5 / d + added_us for d in direct],
        "noop_busy_p50_us_direct": [1e5 / d for d in direct],
        "noop_busy_p50_us_imapmerge": [1e5 / d + 4 * added_us
                                       for d in direct],
        "append_mbps_direct": direct,
        "append_mbps_imapmerge": [d * factor for d in direct],
    }


def test_ratios_pair_by_pair():
    # The machine is twice as fast in two of five rounds; imapmerge does
    # 0.9x direct in every round, and so in the result.
    direct = [100, 200, 100, 200, 100]
    out = bench_proxy.ratios(rounds(direct, 0.9, 50))
    assert out["bulk_vs_direct"] == pytest.approx(0.9)
    assert out["append_vs_direct"] == pytest.approx(0.9)
    assert out["noop_added_p50_us"] == pytest.approx(50)
    assert out["noop_busy_added_p50_us"] == pytest.approx(200)
    assert "apart_bulk_vs_direct" not in out     # no such rounds: no ratio

    # Here imapmerge's rounds fell on fast moments three times (1.8x
    # direct once, 0.9x otherwise): the median of the pairs says 0.9, the
    # ratio of the medians (180 / 100) would say 1.8.
    skewed = rounds(direct, 0.9, 50)
    skewed["bulk_mbps_imapmerge"] = [180, 180, 90, 180, 90]
    assert bench_proxy.ratios(skewed)["bulk_vs_direct"] == pytest.approx(0.9)


def test_ratios_need_every_round():
    figures = rounds([100, 100, 100], 1.0, 0)
    figures["bulk_mbps_imapmerge"].pop()
    with pytest.raises(ValueError):
        bench_proxy.ratios(figures)


def test_select_ratios_pair_by_pair():
    # The machine is slow in tries 2 and 5, and the direct fetch alone was
    # slow in try 4: the cold SELECT is 1.2x its direct fetch in the other
    # four.  The ratio of the medians would say 1.2 / 2.0 = 0.6.
    out = bench_mailbox.medians(
        {"cold_select_s": [1.2, 2.4, 1.2, 1.2, 2.4],
         "direct_identity_s": [1.0, 2.0, 1.0, 2.0, 2.0]},
        "cold_select_ratio", "cold_select_s", "direct_identity_s")
    assert out["cold_select_ratio"] == pytest.approx(1.2)
    assert out["cold_select_s"] == pytest.approx(1.2)
    assert out["direct_identity_s"] == pytest.approx(2.0)
