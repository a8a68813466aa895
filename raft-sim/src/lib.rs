//! raft-sim (being built)
