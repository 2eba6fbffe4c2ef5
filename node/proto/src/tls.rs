//! TLS configuration shared by node and client (rustls, mutual TLS).
