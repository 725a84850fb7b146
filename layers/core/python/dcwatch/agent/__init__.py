"""The site agent: one per site, the site's voter in the three-voter quorum (see fencing.md).

`quorum` decides (pure), `heartbeat` is the signed peer protocol (pure), `report` is the event it
publishes, `policy` its IAM policy, `state` its file on disk, `runner` the loop that ties the
adapters (`dcwatch.adapters.site_lease`, `peer_link`, `fencer`) together.
"""
