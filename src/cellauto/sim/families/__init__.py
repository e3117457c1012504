"""Family bases for simulated devices: what every device on one kind of wire shares.

- `framed`: framed request/reply byte streams with sequenced events and a log read-back
  (the Prodigy's family): sessions, the reply cache by request seq, injected refusals, the
  ``do_<verb>`` dispatch, and event push filtered by subscription.
"""
