"""Messages name epochs from 1 and steps from 0 within their epoch."""

from __future__ import annotations

from splitrec.common.positions import at, epoch_outside


def test_a_position_on_the_wire_is_shown_with_its_epoch_counted_from_1():
    assert at(0, 0) == "epoch 1 step 0"
    assert at(4, 140) == "epoch 5 step 140"


def test_an_epoch_outside_the_job_names_the_job_s_epochs_as_people_count_them():
    assert epoch_outside(5, 5) == "epoch 6 is outside the job's epochs 1..5"
    assert epoch_outside(-1, 3) == "epoch 0 is outside the job's epochs 1..3"
