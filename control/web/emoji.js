// Layer 0 (utilities): the built-in emoji picker's set, a small list with no
// external data. Each entry is [emoji, name]; the name is the button's label
// and what the picker's filter matches.

export const EMOJI = [
  ['😀', 'grinning'], ['😃', 'smiley'], ['😄', 'smile'], ['😁', 'grin'], ['😆', 'laughing'],
  ['😅', 'sweat smile'], ['😂', 'joy'], ['🤣', 'rofl'], ['🙂', 'slightly smiling'], ['😉', 'wink'],
  ['😊', 'blush'], ['😇', 'innocent'], ['🥰', 'smiling with hearts'], ['😍', 'heart eyes'], ['🤩', 'star struck'],
  ['😘', 'kiss'], ['😋', 'yum'], ['😛', 'tongue'], ['😜', 'winking tongue'], ['🤪', 'zany'],
  ['🤗', 'hug'], ['🤔', 'thinking'], ['🤨', 'raised eyebrow'], ['😐', 'neutral'], ['😑', 'expressionless'],
  ['😶', 'no mouth'], ['🙄', 'eye roll'], ['😏', 'smirk'], ['😬', 'grimace'], ['😌', 'relieved'],
  ['😔', 'pensive'], ['😪', 'sleepy'], ['😴', 'sleeping'], ['😷', 'mask'], ['🤒', 'thermometer'],
  ['🤯', 'mind blown'], ['🥳', 'party'], ['😎', 'sunglasses'], ['🤓', 'nerd'], ['😕', 'confused'],
  ['😟', 'worried'], ['😮', 'open mouth'], ['😲', 'astonished'], ['😳', 'flushed'], ['🥺', 'pleading'],
  ['😢', 'cry'], ['😭', 'sob'], ['😱', 'scream'], ['😤', 'triumph'], ['😡', 'angry'],
  ['👍', 'thumbs up'], ['👎', 'thumbs down'], ['👌', 'ok hand'], ['✌️', 'victory'], ['🤞', 'crossed fingers'],
  ['👏', 'clap'], ['🙌', 'raised hands'], ['👋', 'wave'], ['🙏', 'pray'], ['💪', 'muscle'],
  ['👀', 'eyes'], ['🤝', 'handshake'], ['❤️', 'red heart'], ['🧡', 'orange heart'], ['💛', 'yellow heart'],
  ['💚', 'green heart'], ['💙', 'blue heart'], ['💜', 'purple heart'], ['💔', 'broken heart'], ['✨', 'sparkles'],
  ['🔥', 'fire'], ['⭐', 'star'], ['🎉', 'tada'], ['🎂', 'cake'], ['🎁', 'gift'],
  ['☕', 'coffee'], ['🍵', 'tea'], ['🍺', 'beer'], ['🍕', 'pizza'], ['🍜', 'noodles'],
  ['✅', 'check'], ['❌', 'cross'], ['❓', 'question'], ['❗', 'exclamation'], ['💯', 'hundred'],
  ['👉', 'point right'], ['🚀', 'rocket'], ['💡', 'bulb'], ['📌', 'pin'], ['📎', 'paperclip'],
  ['🌞', 'sun'], ['🌙', 'moon'], ['🌧️', 'rain'], ['❄️', 'snow'], ['🌈', 'rainbow'],
  ['🐶', 'dog'], ['🐱', 'cat'], ['🐼', 'panda'], ['🦊', 'fox'], ['🐧', 'penguin'],
];
