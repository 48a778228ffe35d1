"""A job left half-done at the parties (its coordinator died) can be run again."""

from __future__ import annotations

from splitrec.config.job import load_job_config
from splitrec.coordinator.client import PartyClient
from splitrec.coordinator.handshake import handshake
from splitrec.coordinator.job import JobDriver
from splitrec.coordinator.windows import Window, run_window
from tests.support import running_parties


def test_rerun_after_an_abandoned_job_starts_afresh(party_files):
    party_files.edit("job", epochs=1, batch_size=256, predict="none")
    with running_parties(party_files) as parties:
        config = load_job_config(party_files.job)
        clients = {p.name: PartyClient(p.name, p.address, 30.0) for p in config.parties}
        handshake(config, clients)
        run_window(clients, "bob", Window(config.job, 0, 0, 7, 7), lambda _: None, 30.0)
        for client in clients.values():
            client.close()  # the first coordinator is gone; the parties keep the job

        result = JobDriver(config).run()

        assert [r.epoch for r in result.records] == [1]
        assert result.records[0].val_auc > 0.5
        for party in parties.values():
            status = party.party.status()
            assert (status.job_id, status.state) == (config.job, "ended")
