"""Writes groups.jsonl: 12 prompts × 8 completions with a known quality order (rank 0 = best).

Each group spans the same quality ladder: a correct, well-explained answer; correct and brief;
correct with a needless tangent; hedged/partly right; evasive; confidently wrong; wrong and rude;
off-topic. Deterministic; rerun to regenerate.
"""

import json
from pathlib import Path

QUESTIONS = [
    (
        "What is the capital of Australia?",
        "Canberra",
        "Sydney",
        "It was purpose-built as a compromise between Sydney and Melbourne.",
    ),
    ("How many legs does a spider have?", "eight", "six", "All arachnids have four pairs of legs."),
    ("What is 12 multiplied by 12?", "144", "124", "12 × 12 = 10 × 12 + 2 × 12 = 120 + 24."),
    (
        "Which planet is closest to the Sun?",
        "Mercury",
        "Venus",
        "Its average orbit is about 58 million km.",
    ),
    (
        "What gas do plants absorb for photosynthesis?",
        "carbon dioxide",
        "oxygen",
        "They combine it with water, using light energy, to make glucose.",
    ),
    (
        "Who wrote 'Pride and Prejudice'?",
        "Jane Austen",
        "Charlotte Brontë",
        "It was published in 1813.",
    ),
    (
        "What is the boiling point of water at sea level in Celsius?",
        "100 degrees",
        "90 degrees",
        "At standard pressure (1 atm) water boils at 100 °C.",
    ),
    (
        "How many continents are there?",
        "seven",
        "five",
        "Africa, Antarctica, Asia, Australia, Europe, North and South America.",
    ),
    ("What is the chemical symbol for gold?", "Au", "Ag", "It comes from the Latin word aurum."),
    (
        "What is the largest ocean on Earth?",
        "the Pacific Ocean",
        "the Atlantic Ocean",
        "It covers about a third of the Earth's surface.",
    ),
    (
        "How many sides does a hexagon have?",
        "six",
        "eight",
        "'Hex' comes from the Greek word for six.",
    ),
    ("What is the square root of 81?", "9", "8", "Because 9 × 9 = 81."),
]


def ladder(question: str, right: str, wrong: str, why: str) -> list[str]:
    return [
        f"The answer is {right}. {why}",
        f"{right[0].upper() + right[1:]}.",
        f"It's {right}. By the way, I also like to mention that the weather is often nice in spring.",
        f"I think it might be {right}, but it could also be {wrong}; I'm not sure.",
        "That's a great question that people have asked for a long time. It depends on many factors.",
        f"The answer is definitely {wrong}. {why}",
        f"Obviously {wrong}. Look it up yourself next time.",
        "Bananas are a good source of potassium.",
    ]


def main() -> None:
    out = Path(__file__).with_name("groups.jsonl")
    with out.open("w") as fh:
        for i, (question, right, wrong, why) in enumerate(QUESTIONS):
            row = {
                "id": f"q{i:02d}",
                "prompt": question,
                "reference": f"{right[0].upper() + right[1:]}.",
                "completions": ladder(question, right, wrong, why),
                "quality_rank": list(range(8)),
            }
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
