//! Billing and suspension: the paid sign-up journey against a recording Stripe and a
//! real SMTP server, billing events, and suspension by hand.

mod browser;
mod paid;
mod smtp;
mod suspend;
