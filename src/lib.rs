//! Receive Adobe Learning Manager (ALM) webhooks.
#![cfg_attr(docsrs, feature(doc_cfg))]
