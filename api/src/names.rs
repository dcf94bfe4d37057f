//! Readable, random namespace names for new accounts: three words (`brave-otter-river`),
//! about 260,000 of them, never a reserved or taken one.

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "curious", "dapper",
    "eager", "early", "fancy", "fast", "fierce", "gentle", "glad", "golden", "grand", "happy",
    "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "lucky", "merry", "mighty",
    "modest", "noble", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "rosy",
    "royal", "rustic", "sharp", "shiny", "silent", "silver", "simple", "sleek", "smart", "snowy",
    "solid", "spry", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "young",
    "zany", "zen", "zesty",
];

const ANIMALS: &[&str] = &[
    "badger", "bat", "bear", "beaver", "bison", "cat", "crane", "crow", "deer", "dingo", "dove",
    "eagle", "eel", "elk", "falcon", "ferret", "finch", "fox", "frog", "gecko", "goat", "goose",
    "hare", "hawk", "heron", "ibex", "koala", "lark", "lemur", "lion", "llama", "lynx", "magpie",
    "mole", "moose", "moth", "newt", "okapi", "orca", "otter", "owl", "panda", "puffin", "quail",
    "raven", "robin", "salmon", "seal", "shrew", "skunk", "sloth", "snail", "sparrow", "stoat",
    "swan", "tapir", "tiger", "toad", "trout", "turtle", "vole", "walrus", "wolf", "wren",
];

const PLACES: &[&str] = &[
    "bay", "beach", "brook", "canyon", "cape", "cave", "cliff", "cloud", "coast", "cove", "creek",
    "dale", "delta", "dune", "field", "fjord", "forest", "glade", "glen", "grove", "harbor",
    "heath", "hill", "island", "lagoon", "lake", "marsh", "meadow", "mesa", "moor", "mountain",
    "oasis", "ocean", "orchard", "park", "peak", "plain", "pond", "prairie", "reef", "ridge",
    "river", "shore", "sky", "spring", "star", "stone", "stream", "summit", "thicket", "tundra",
    "vale", "valley", "wave", "willow", "woods", "bluff", "crest", "ledge", "lake", "pine", "rock",
    "sea", "sound",
];

/// A fresh name: three words.
pub fn random_name() -> String {
    let pick = |words: &[&'static str]| words[rand::random_range(0..words.len())];
    format!("{}-{}-{}", pick(ADJECTIVES), pick(ANIMALS), pick(PLACES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_namespace_names() {
        for _ in 0..200 {
            let name = random_name();
            micro_tenant::spec::check_namespace_name(&name).unwrap();
            assert_eq!(name.split('-').count(), 3, "{name}");
        }
    }
}
