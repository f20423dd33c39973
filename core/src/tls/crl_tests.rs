//! Scenarios for revocation checking, on CRLs minted with rcgen.
