//! The parser's own tests: what it reads, and the places its errors give.
use super::*;

#[test]
fn reads_the_issues_example() {
    let text = "Net(\n  (features): Sequential(\n    (0): Flatten(start_dim=1, end_dim=-1)\n    (1): Linear(in_features=784, out_features=300, bias=True)\n    (2): BatchNorm1d(300, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n    (3): ReLU()\n  )\n  (head): Linear(in_features=300, out_features=10, bias=False)\n)\n";
    let m = parse(text, "m.txt").unwrap();
    assert_eq!(m.class, "Net");
    assert_eq!(m.children.len(), 2);
    let (name, features) = &m.children[0];
    assert_eq!(name, "features");
    assert_eq!(features.children[2].1.class, "BatchNorm1d");
    assert_eq!(features.children[2].1.args[0].value, Value::Int(300));
    assert_eq!(features.children[2].1.args[1].value, Value::Float(1e-5));
    assert_eq!(
        features.children[2].1.pos,
        Pos {
            line: 5,
            column: 10
        }
    );
    let head = &m.children[1].1;
    assert_eq!(head.args[2].key.as_deref(), Some("bias"));
    assert_eq!(head.args[2].value, Value::Bool(false));
}

#[test]
fn reads_tuples_strings_and_none() {
    let m = parse("X(a=(3, 3), b=(300,), c='tanh', d=None, e=-0.5, f=())", "f").unwrap();
    let v: Vec<&Value> = m.args.iter().map(|a| &a.value).collect();
    assert_eq!(
        v,
        [
            &Value::Tuple(vec![Value::Int(3), Value::Int(3)]),
            &Value::Tuple(vec![Value::Int(300)]),
            &Value::Str("tanh".into()),
            &Value::None,
            &Value::Float(-0.5),
            &Value::Tuple(vec![]),
        ]
    );
    // a positional tuple is not a child
    let m = parse("LayerNorm((300,), eps=1e-05)", "f").unwrap();
    assert_eq!(m.args[0].value, Value::Tuple(vec![Value::Int(300)]));
}

#[test]
fn errors_give_the_place() {
    let err = |t: &str| parse(t, "m.txt").unwrap_err().to_string();
    // Linear's ')' is on line 3, so Net's is missing at the end
    assert_eq!(
        err("Net(\n  (a): Linear(1, 2\n)"),
        "m.txt:3:2: expected ')', found the end of the file"
    );
    assert!(err("Linear(in_features=7x)").contains("m.txt:1:20: '7x' is not a number"));
    assert!(err("Linear(a=1, 2)").contains("positional argument after a keyword"));
    assert!(err("Linear(a=1, a=2)").contains("given twice"));
    assert!(
        err("Net(\n (a): ReLU()\n (a): ReLU()\n)").contains("m.txt:3:7: a second child named 'a'")
    );
    assert!(err("ReLU() ReLU()").contains("nothing after"));
    assert!(err("Linear(c='x)").contains("never closed"));
    let deep = "A(".to_string() + &"(x): A(".repeat(100) + &")".repeat(101);
    assert!(err(&deep).contains("deeper"));
    let deep = format!("A(x={}{})", "(".repeat(100), ")".repeat(100));
    assert!(err(&deep).contains("deeper"));
    assert!(err("").contains("expected a module's class name"));
}
