//! A store whose every operation fails, for tests of what hookgate does when its store does.

use super::{Claim, Event, Meta, Selection, Store, StoreError};

#[derive(Debug, Default)]
pub struct FaultyStore;

fn fail<T>() -> Result<T, StoreError> {
    Err(StoreError::Backend("injected fault".into()))
}

impl Store for FaultyStore {
    async fn claim(&self, _: &str, _: &str, _: u64, _: u64) -> Result<Claim, StoreError> {
        fail()
    }
    fn release(&self, _: &str, _: &str) {}
    async fn mark_delivered(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
        fail()
    }
    async fn enqueue(&self, _: &Event, _: Meta, _: Option<u64>) -> Result<Meta, StoreError> {
        fail()
    }
    async fn event(&self, _: &str, _: u64) -> Result<Option<Event>, StoreError> {
        fail()
    }
    async fn ack(&self, _: &str, _: u64) -> Result<(), StoreError> {
        fail()
    }
    async fn reschedule(&self, _: &Meta) -> Result<(), StoreError> {
        fail()
    }
    async fn dead_letter(&self, _: &Meta) -> Result<(), StoreError> {
        fail()
    }
    async fn pending(&self) -> Result<Vec<Meta>, StoreError> {
        fail()
    }
    async fn dead_letters(&self) -> Result<Vec<Meta>, StoreError> {
        fail()
    }
    async fn replay(&self, _: &Selection, _: u64) -> Result<Vec<Meta>, StoreError> {
        fail()
    }
    async fn drop_dead(&self, _: &Selection) -> Result<Vec<Meta>, StoreError> {
        fail()
    }
    async fn purge_expired(&self, _: u64) -> Result<usize, StoreError> {
        fail()
    }
}
