//! Named services: `ServiceSpec::name`, `System::lookup`, and the errors around them.

use modo::prelude::*;
use uuid::Uuid;

struct Web;
impl Service for Web {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        "Webserver".into()
    }
}

struct Cache;
impl Service for Cache {}

struct Hello;
impl Handler<Hello> for Web {
    type Reply = &'static str;
    async fn handle(&mut self, _: Hello, _ctx: &mut Context<Self>) -> &'static str {
        "hello"
    }
}

/// A parent whose one declared child is named `child_name`.
struct Parent {
    child_name: &'static str,
}

impl Service for Parent {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![ServiceSpec::new(Cache).name(self.child_name).into()]
    }
}

fn web(name: &str) -> ServiceSpec<Web> {
    ServiceSpec::new(Web).name(name)
}

#[tokio::test]
async fn a_named_service_is_found_by_name() {
    let system = System::new();
    let addr = system.spawn(web("webserver")).await.unwrap();
    let found = system.lookup::<Web>("webserver").unwrap();
    assert_eq!(found, addr);
    assert_eq!(found.ask(Hello).await.unwrap(), "hello");

    // Restarts keep the name.
    addr.restart().await.unwrap();
    assert_eq!(system.lookup::<Web>("webserver").unwrap(), addr);

    let graph = system.registry().graph().await;
    let node = graph.find_by_name("webserver").unwrap();
    assert_eq!(node.id, addr.id());
    assert_eq!(node.name.as_deref(), Some("webserver"));
    assert_eq!(node.label, "Webserver");
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_taken_name_is_refused_until_it_is_free_again() {
    let system = System::new();
    let first = system.spawn(web("webserver")).await.unwrap();

    let err = system.spawn(web("webserver")).await.unwrap_err();
    assert!(
        matches!(&err, Error::NameTaken { name } if name == "webserver"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"the name "webserver" is taken by a running service"#
    );
    // A service of another type is refused all the same.
    let err = system
        .spawn(ServiceSpec::new(Cache).name("webserver"))
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::NameTaken { name } if name == "webserver"));

    // The refused services are gone; the first keeps its name.
    assert_eq!(system.lookup::<Web>("webserver").unwrap(), first);
    assert_eq!(system.roots().len(), 1);
    let graph = system.registry().graph().await;
    assert_eq!(graph.len(), 1);
    assert_eq!(graph.find_by_name("webserver").unwrap().id, first.id());

    // Once the first stops for good, the name is free.
    first.stop().await.unwrap();
    assert!(matches!(
        system.lookup::<Web>("webserver"),
        Err(Error::UnknownName { .. })
    ));
    let second = system.spawn(web("webserver")).await.unwrap();
    let found = system.lookup::<Web>("webserver").unwrap();
    assert_eq!(found, second);
    assert_ne!(found, first);
    system.shutdown().await.unwrap();
    assert!(system.lookup::<Web>("webserver").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_spawns_with_one_name_exactly_one_wins() {
    let system = System::new();
    for round in 0..20 {
        let name = format!("race-{round}");
        let (a, b) = tokio::join!(system.spawn(web(&name)), system.spawn(web(&name)));
        let winner = match (a, b) {
            (Ok(w), Err(Error::NameTaken { name: n }))
            | (Err(Error::NameTaken { name: n }), Ok(w)) => {
                assert_eq!(n, name);
                w
            }
            other => panic!("round {round}: {other:?}"),
        };
        assert_eq!(system.lookup::<Web>(&name).unwrap(), winner);
        winner.stop().await.unwrap();
    }
    assert!(system.registry().graph().await.is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_name_suggests_a_close_one() {
    let system = System::new();
    let err = system.lookup::<Web>("webserver").unwrap_err();
    assert!(matches!(
        &err,
        Error::UnknownName { name, did_you_mean } if name == "webserver" && did_you_mean.is_empty()
    ));

    system.spawn(web("webserver")).await.unwrap();
    system.spawn(web("websockets")).await.unwrap();
    system
        .spawn(ServiceSpec::new(Cache).name("cache"))
        .await
        .unwrap();

    let err = system.lookup::<Web>("webservr").unwrap_err();
    match &err {
        Error::UnknownName { name, did_you_mean } => {
            assert_eq!(name, "webservr");
            assert_eq!(did_you_mean, &["webserver"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"no service is named "webservr"; did you mean "webserver"?"#
    );
    let err = system.lookup::<Cache>("cahce").unwrap_err();
    assert!(matches!(
        &err,
        Error::UnknownName { did_you_mean, .. } if did_you_mean == &["cache"]
    ));

    let err = system.lookup::<Web>("database").unwrap_err();
    assert!(matches!(
        &err,
        Error::UnknownName { name, did_you_mean } if name == "database" && did_you_mean.is_empty()
    ));
    assert_eq!(err.to_string(), r#"no service is named "database""#);
    // Every close name, closest first.
    let err = system.lookup::<Web>("websock").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"no service is named "websock"; did you mean "websockets"?"#
    );
    let err = system.lookup::<Web>("websocker").unwrap_err();
    match &err {
        Error::UnknownName { did_you_mean, .. } => {
            assert_eq!(did_you_mean, &["websockets", "webserver"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"no service is named "websocker"; did you mean "websockets" or "webserver"?"#
    );
    assert_eq!(err.label(), None);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_name_of_another_type_is_a_wrong_type_error() {
    let system = System::new();
    system.spawn(web("webserver")).await.unwrap();
    let err = system.lookup::<Cache>("webserver").unwrap_err();
    match &err {
        Error::WrongType {
            name,
            expected,
            actual,
        } => {
            assert_eq!(name, "webserver");
            assert_eq!(*expected, std::any::type_name::<Cache>());
            assert_eq!(*actual, std::any::type_name::<Web>());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            r#"the service named "webserver" is a {}, not a {}"#,
            std::any::type_name::<Web>(),
            std::any::type_name::<Cache>()
        )
    );
    // The right type still finds it.
    assert!(system.lookup::<Web>("webserver").is_ok());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_named_child_is_found_too() {
    let system = System::new();
    let parent = system.spawn(Parent { child_name: "c" }).await.unwrap();
    let child = system.lookup::<Cache>("c").unwrap();
    assert_eq!(child.depth(), 1);
    assert_eq!(child.service_ref().parent().unwrap().id(), parent.id());

    let graph = system.registry().graph().await;
    let node = graph.find_by_name("c").unwrap();
    assert_eq!(node.id, child.id());
    assert_eq!(node.parent, Some(parent.id()));
    assert_eq!(graph.path(child.id()), ["Parent", "Cache"]);

    // The child's name goes with it when its parent stops.
    parent.stop().await.unwrap();
    assert!(child.is_terminated());
    assert!(matches!(
        system.lookup::<Cache>("c"),
        Err(Error::UnknownName { .. })
    ));
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_with_a_taken_name_fails_its_parents_start() {
    let system = System::new();
    let holder = system
        .spawn(ServiceSpec::new(Cache).name("c"))
        .await
        .unwrap();
    let err = system.spawn(Parent { child_name: "c" }).await.unwrap_err();
    match &err {
        Error::HookFailed {
            hook: modo::Hook::StartChild,
            source,
            ..
        } => assert!(
            matches!(source.downcast_ref::<Error>(), Some(Error::NameTaken { name }) if name == "c"),
            "{source}"
        ),
        other => panic!("{other:?}"),
    }
    // Nothing of the refused tree is left; the holder keeps its name.
    assert_eq!(system.lookup::<Cache>("c").unwrap(), holder);
    let graph = system.registry().graph().await;
    let ids: Vec<Uuid> = graph.nodes().iter().map(|n| n.id).collect();
    assert_eq!(ids, [holder.id()]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crashed_root_frees_its_name() {
    let system = System::new();
    let addr = system.spawn(web("webserver")).await.unwrap();
    addr.crash("boom");
    addr.wait_until_stopped().await;
    assert!(addr.is_terminated());
    assert!(matches!(
        system.lookup::<Web>("webserver"),
        Err(Error::UnknownName { .. })
    ));
    let again = system.spawn(web("webserver")).await.unwrap();
    assert_eq!(system.lookup::<Web>("webserver").unwrap(), again);
    system.shutdown().await.unwrap();
}
