//! The shape check shared by every place Rapport accepts a written condition (the oversight
//! policy's conditions, the next-best-action catalog's rules). Both parse with `evalexpr`,
//! whose parser lets through trees no condition should have: an operator missing an operand,
//! assignments, sequences. Checking here keeps their error messages the same.

use evalexpr::{Node, Operator};

/// What is wrong with the shape of a parsed condition: an operator missing an operand, or a
/// construct conditions may not use (assignments, sequences). `None` when it is well formed.
pub fn shape_problem(node: &Node) -> Option<String> {
    use Operator as Op;
    let n = node.children().len();
    let expected = match node.operator() {
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Mod
        | Op::Exp
        | Op::Eq
        | Op::Neq
        | Op::Gt
        | Op::Lt
        | Op::Geq
        | Op::Leq
        | Op::And
        | Op::Or => Some(2),
        Op::Not | Op::Neg | Op::RootNode => Some(1),
        Op::Const { .. } | Op::VariableIdentifierRead { .. } => Some(0),
        Op::Tuple | Op::FunctionIdentifier { .. } => None,
        _ => return Some("uses an assignment or a sequence, which conditions may not".into()),
    };
    if let Some(expected) = expected {
        if n != expected {
            return Some(if n < expected {
                "is incomplete: an operator is missing an operand".into()
            } else {
                "does not parse as one expression".into()
            });
        }
    }
    node.children().iter().find_map(shape_problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Option<String> {
        shape_problem(&evalexpr::build_operator_tree(text).expect("parses"))
    }

    #[test]
    fn well_formed_conditions_pass_and_broken_ones_are_named() {
        assert_eq!(problem("amount > 100 && plan == \"fiber\""), None);
        assert_eq!(problem("!(churn_risk >= 0.4)"), None);
        assert!(problem("a = 1").is_some_and(|p| p.contains("assignment")));
        assert!(problem("a > 1; b > 2").is_some_and(|p| p.contains("sequence")));
    }
}
