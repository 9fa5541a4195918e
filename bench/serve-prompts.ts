/** The prompts the serving benchmarks cycle through (sequence i gets PROMPTS[i % length]). */
export const PROMPTS = ['ROMEO:', 'First Citizen:', 'To be, or not', 'KING HENRY', 'O, what a', 'JULIET:\nWhat', 'Now is the winter', 'All:'];
