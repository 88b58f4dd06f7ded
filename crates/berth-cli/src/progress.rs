//! The live progress of a deployment: redrawn in place on a terminal, timestamped lines otherwise.
