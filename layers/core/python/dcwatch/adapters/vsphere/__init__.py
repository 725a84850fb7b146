"""vCenter through pyvmomi: the small contract failover, drills and probes need (`session`, `collector`, `power`,
`inventory`, `clones`, `snapshot`).

Probes log in and out once per use (try/finally, never atexit: Lambda environments are reused); the
failover's steps reuse the session a warm Lambda left (`reused_session`), over a new TCP connection each
time. Properties are read in one PropertyCollector call rather than object by object, a wait on VMs is a
PropertyCollector `WaitForUpdatesEx` that answers as they change, and faults are turned into domain errors
that say which vCenter and what went wrong.
"""

from dcwatch.adapters.vsphere.clones import VsphereDrillLab
from dcwatch.adapters.vsphere.collector import read_properties
from dcwatch.adapters.vsphere.inventory import VsphereInventory
from dcwatch.adapters.vsphere.power import call_each
from dcwatch.adapters.vsphere.session import log_out_idle_sessions, reused_session, vcenter_session
from dcwatch.adapters.vsphere.snapshot import read_vcenter, vcenter_login_check

__all__ = [
    "VsphereDrillLab",
    "VsphereInventory",
    "call_each",
    "log_out_idle_sessions",
    "read_properties",
    "read_vcenter",
    "reused_session",
    "vcenter_login_check",
    "vcenter_session",
]
