//! Signals (Mode's observer pattern, [`modo::signal::Signal`]): an `order_placed` signal that
//! a shop sends, with receivers that log, forward to a modo service, listen to one shop only,
//! fail, and get disconnected.
//!
//! ```text
//! cargo run --example signals
//! ```

use std::time::Duration;

use modo::prelude::*;
use modo::signal::Signal;

/// The value sent: one order.
#[derive(Debug, Clone)]
struct Order {
    id: u32,
    cents: u64,
}

/// The sender: which shop placed the order.
type Shop = &'static str;

/// A modo service the async receiver talks to: adds up what was sold.
#[derive(Default)]
struct Sales {
    orders: u32,
    cents: u64,
}

impl Service for Sales {}

/// Count one order.
struct Record(Order);
/// How many orders and how much money so far.
struct Totals;

impl Handler<Record> for Sales {
    type Reply = ();
    async fn handle(&mut self, Record(order): Record, ctx: &mut Context<Self>) {
        self.orders += 1;
        self.cents += order.cents;
        ctx.log().info(format_args!("recorded order #{}", order.id));
    }
}

impl Handler<Totals> for Sales {
    type Reply = (u32, u64);
    async fn handle(&mut self, _: Totals, _ctx: &mut Context<Self>) -> (u32, u64) {
        (self.orders, self.cents)
    }
}

#[tokio::main]
async fn main() -> Result<(), modo::Error> {
    // The failing receivers' warnings go through tracing: show them.
    tracing_subscriber::fmt()
        .event_format(modo::log::ModeFormat::default())
        .init();

    let system = System::new();
    let sales = system.spawn(Sales::default()).await?;

    let order_placed: Signal<Order, Shop> = Signal::named("order_placed");

    // 1. A sync receiver: called inline, cannot fail.
    let logger = order_placed.connect(|shop: &Shop, order: &Order| {
        println!(
            "  log:    {shop} placed order #{} ({} cents)",
            order.id, order.cents
        );
    });

    // 2. An async receiver: forwards the order to the `Sales` service and is awaited by
    //    `send`. A failed `tell` (the service is gone) would be reported like any failure.
    let to_sales = sales.clone();
    order_placed.connect_async(move |_shop: Shop, order: Order| {
        let sales = to_sales.clone();
        async move { sales.tell(Record(order)).await }
    });

    // 3. A receiver for one sender only: orders from the EU shop need a VAT invoice.
    order_placed.connect_from("eu-shop", |_: &Shop, order: &Order| {
        println!("  vat:    invoice for EU order #{}", order.id);
    });

    // 4. A receiver that fails on big orders: reported (a warning and the `SendReport`), and
    //    the receivers after it still run.
    let fraud_check = order_placed.connect(|_: &Shop, order: &Order| {
        if order.cents > 100_000 {
            Err(format!("order #{} is suspiciously big", order.id))
        } else {
            Ok(())
        }
    });

    // 5. An async receiver after the failing one, to show it still runs.
    order_placed.connect_async(|shop: Shop, order: Order| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        println!(
            "  mail:   confirmation for order #{} sent to {shop}",
            order.id
        );
    });

    println!("{} receivers connected", order_placed.len());

    println!("send #1 from us-shop:");
    let report = order_placed
        .send(
            "us-shop",
            Order {
                id: 1,
                cents: 2_500,
            },
        )
        .await;
    println!(
        "  -> {} receivers called, ok: {}",
        report.called(),
        report.is_ok()
    );

    println!("send #2 from eu-shop (a big one):");
    let report = order_placed
        .send(
            "eu-shop",
            Order {
                id: 2,
                cents: 250_000,
            },
        )
        .await;
    println!(
        "  -> {} called, {} succeeded",
        report.called(),
        report.succeeded()
    );
    for failure in report.failures() {
        let which = if failure.receiver() == fraud_check {
            " (the fraud check)"
        } else {
            ""
        };
        println!("  -> failed: {failure}{which}");
    }

    // `with_default_sender`: the same receivers, and `send_default` sends as "eu-shop".
    let eu_orders = order_placed.with_default_sender("eu-shop");
    println!("send #3 through the EU shop's handle (send_default):");
    let report = eu_orders.send_default(Order { id: 3, cents: 900 }).await;
    println!(
        "  -> {} receivers called, ok: {}",
        report.called(),
        report.is_ok()
    );

    // Disconnecting through either handle removes the receiver for both.
    assert!(eu_orders.disconnect(logger));
    assert!(!order_placed.is_connected(logger));
    println!(
        "logger disconnected: {} receivers left (disconnecting again: {})",
        order_placed.len(),
        order_placed.disconnect(logger)
    );

    println!("send #4 from us-shop (no log line now):");
    let report = order_placed
        .send("us-shop", Order { id: 4, cents: 100 })
        .await;
    println!(
        "  -> {} receivers called, ok: {}",
        report.called(),
        report.is_ok()
    );

    let (orders, cents) = sales.ask(Totals).await?;
    println!("Sales recorded {orders} orders, {cents} cents in total");
    assert_eq!((orders, cents), (4, 2_500 + 250_000 + 900 + 100));

    system.shutdown().await
}
