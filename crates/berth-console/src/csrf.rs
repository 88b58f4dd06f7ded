//! csrf
