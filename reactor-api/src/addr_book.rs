//! The `AddressBook` trait (filled by the address-book work).
