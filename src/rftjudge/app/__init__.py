"""The application layer: the ``rftjudge`` command and what only it needs.

Judge config files (:mod:`.config`), data-set scoring with resumable output (:mod:`.scoring`, on
Ray: :mod:`.ray`), calibration reports (:mod:`.report`), the offline local judge server
(:mod:`.local`) and the command line itself (:mod:`.cli`). Library code below this package never
imports it; everything here builds on the public judges, clients and integrations.
"""
