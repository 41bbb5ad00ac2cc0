pub mod evil;
